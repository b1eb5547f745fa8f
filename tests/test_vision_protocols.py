"""Images through Anthropic's /v1/messages (image blocks) and Ollama's /api/chat and
/api/generate (`images`), with their official clients, to the tiny LLaVA of
test_vision_serve.py: the same greedy answer as the same image through
/v1/chat/completions; a text-only model or a non-image payload is a 400 naming the block in
each protocol's own error shape; every protocol's usage counts the image tokens."""

from __future__ import annotations

import base64
from typing import Any

import anthropic
import ollama
import pytest
from test_vision import hf_prompt_tokens
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


def test_usage_counts_the_image_tokens(server, tiny_llava_hf):
    """The prompt count is the model's whole prompt, its image tokens with it (transformers'
    processor makes the same prompt), in each protocol's usage, whole and streamed."""
    n = hf_prompt_tokens(tiny_llava_hf, QUESTION)
    client = server.client()
    ask = dict(model="llava", messages=image_message(data_url(RED)), max_tokens=4)
    chat = client.chat.completions.create(**ask)  # type: ignore[call-overload]
    assert chat.usage.prompt_tokens == n and chat.usage.total_tokens == n + 4
    chunks = list(client.chat.completions.create(
        **ask, stream=True, stream_options={"include_usage": True}))  # type: ignore[call-overload]  # fmt: skip
    assert chunks[-1].usage.prompt_tokens == n
    text_only = client.chat.completions.create(
        model="llava", messages=[{"role": "user", "content": QUESTION}], max_tokens=4
    )
    assert text_only.usage is not None and text_only.usage.prompt_tokens < n

    r = client.responses.create(model="llava", max_output_tokens=4, input=[
        {"role": "user", "content": [{"type": "input_image", "image_url": data_url(RED)},
                                     {"type": "input_text", "text": QUESTION}]}])  # type: ignore[arg-type]  # fmt: skip
    assert r.usage is not None and r.usage.input_tokens == n

    msg = claude(server).messages.create(model="llava", max_tokens=4, messages=image_block(RED))  # type: ignore[arg-type]
    assert msg.usage.input_tokens == n
    with claude(server).messages.stream(
        model="llava",
        max_tokens=4,
        messages=image_block(RED),  # type: ignore[arg-type]
    ) as stream:
        assert stream.get_final_message().usage.input_tokens == n  # message_delta's count

    client_o = ollama.Client(host=server.url)
    message = {"role": "user", "content": QUESTION, "images": [RED]}
    assert (
        client_o.chat(model="llava", messages=[message], options={"num_predict": 4})[
            "prompt_eval_count"
        ]
        == n
    )
    gen = client_o.generate(
        model="llava", prompt=QUESTION, images=[RED], options={"num_predict": 4}
    )
    assert gen.prompt_eval_count == n
