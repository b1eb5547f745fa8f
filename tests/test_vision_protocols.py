"""Images through Anthropic's /v1/messages (image blocks) and Ollama's /api/chat and
/api/generate (`images`), with their official clients, to the tiny LLaVA of
test_vision_serve.py: the same greedy answer as the same image through
/v1/chat/completions; a text-only model or a non-image payload is a 400 naming the block in
each protocol's own error shape."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import ollama
import pytest
from test_vision_serve import QUESTION, RED, data_url, expected, image_message, server

__all__ = ["expected", "server"]  # module fixtures, shared with test_vision_serve.py


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_block(data: bytes) -> list[dict[str, Any]]:
    source = {"type": "base64", "media_type": "image/png", "data": b64(data)}
    return [{"role": "user", "content": [{"type": "image", "source": source},
                                         {"type": "text", "text": QUESTION}]}]  # fmt: skip


def claude(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)


def test_anthropic_image_block(server):
    chat = server.client().chat.completions.create(
        model="llava", messages=image_message(data_url(RED)), max_tokens=8, temperature=0
    )  # type: ignore[arg-type]
    r = claude(server).messages.create(
        model="llava", max_tokens=8, messages=image_block(RED), extra_body={"temperature": 0}
    )  # type: ignore[arg-type]
    assert r.content[0].type == "text" and r.content[0].text == chat.choices[0].message.content
    assert r.usage.output_tokens == 8


def test_ollama_images(server, expected):
    client = ollama.Client(host=server.url)
    greedy = {"temperature": 0, "num_predict": 8}
    message = {"role": "user", "content": QUESTION, "images": [RED]}
    chat = client.chat(model="llava", options=greedy, messages=[message])
    assert chat.message.content == expected
    gen = client.generate(model="llava", prompt=QUESTION, images=[RED], options=greedy)
    assert gen.response == expected


@pytest.mark.parametrize(
    ("model", "data", "words"),
    [("llama", RED, "text-only"), ("llava", b"hello", "not an image")],
)
def test_bad_images_name_the_block(server, model, data, words):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude(server).messages.create(model=model, max_tokens=4, messages=image_block(data))  # type: ignore[arg-type]
    body = e.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("messages[0].content[0]: ")
    assert words in body["error"]["message"]

    client = ollama.Client(host=server.url)
    msg = {"role": "user", "content": QUESTION, "images": [data]}
    with pytest.raises(ollama.ResponseError) as o:
        client.chat(model=model, messages=[msg], options={"num_predict": 4})
    assert o.value.status_code == 400 and o.value.error.startswith("messages[0].images[0]: ")
    assert words in o.value.error
    with pytest.raises(ollama.ResponseError) as g:
        client.generate(model=model, prompt=QUESTION, images=[data], options={"num_predict": 4})
    assert g.value.status_code == 400 and g.value.error.startswith("images[0]: ")
