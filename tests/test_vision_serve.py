"""Images over HTTP: image_url parts in /v1/chat/completions and input_image in
/v1/responses (official openai client), to a tiny LLaVA served next to a text-only model;
bad images are 400s naming the part."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from test_serve import ServerThread
from test_vision import F32, flat, png

import ovchat
from ovchat.engine.images import MAX_IMAGES
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app
from ovchat.serve.settings import ModelSpec

QUESTION = "Describe the picture."
RED = png(flat((200, 40, 90)))


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_message(*urls: str, text: str = QUESTION) -> list[dict[str, Any]]:
    """The images first, then the question (as the Python API places them)."""
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]


@pytest.fixture(scope="module")
def server(tiny_llava: Path, tiny_llama: Path) -> Iterator[ServerThread]:
    specs = (ModelSpec("llava", tiny_llava), ModelSpec("llama", tiny_llama))
    with ServerThread(create_app(Settings(models=specs, kv_cache_gb=1, properties=F32))) as s:
        yield s


@pytest.fixture(scope="module")
def expected(tiny_llava: Path) -> str:
    """The Python API's answer for the red picture (the same greedy tokens as PyTorch:
    tests/test_vision.py)."""
    with ovchat.load(tiny_llava, **F32) as m:
        return m.generate(QUESTION, images=[RED], max_new_tokens=8, temperature=0)


def test_models_list_the_vision_kind(server):
    kinds = {m["id"]: m["kind"] for m in server.client().models.list().model_dump()["data"]}
    assert kinds == {"llava": "vision", "llama": "chat"}


def test_chat_completions_with_an_image(server, expected):
    client = server.client()
    r = client.chat.completions.create(
        model="llava", messages=image_message(data_url(RED)), max_tokens=8, temperature=0
    )  # type: ignore[arg-type]
    assert r.choices[0].message.content == expected
    assert r.usage is not None and r.usage.completion_tokens == 8
    streamed = client.chat.completions.create(
        model="llava", messages=image_message(data_url(RED)), max_tokens=8, temperature=0,
        stream=True,
    )  # type: ignore[call-overload]  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == expected


def test_several_image_requests_at_once(server, expected):
    client = server.client(http_client=None)
    aclient = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    blue = data_url(png(flat((20, 40, 220))))

    async def ask(url: str) -> str:
        r = await aclient.chat.completions.create(
            model="llava", messages=image_message(url), max_tokens=8, temperature=0
        )  # type: ignore[arg-type]
        return r.choices[0].message.content or ""

    async def four() -> list[str]:
        return await asyncio.gather(*(ask(u) for u in [data_url(RED), blue] * 2))

    answers = asyncio.run(four())
    assert answers[0] == answers[2] == expected and answers[1] == answers[3] != expected
    assert client.models.list()  # still serving


def test_responses_input_image(server, expected):
    r = server.client().responses.create(
        model="llava", max_output_tokens=8, temperature=0,
        input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": data_url(RED)},
            {"type": "input_text", "text": QUESTION}]}],
    )  # type: ignore[arg-type]  # fmt: skip
    assert r.output_text == expected


@pytest.mark.parametrize(
    ("model", "urls", "param", "words"),
    [
        ("llama", [data_url(RED)], "messages[0].content[0]", "text-only"),
        ("llava", [data_url(RED), data_url(b"hello")], "messages[0].content[1]", "not an image"),
        ("llava", ["http://127.0.0.1:9/x.png"], "messages[0].content[0]", "does not fetch"),
        ("llava", ["file:///etc/passwd"], "messages[0].content[0]", "data: URL"),
        ("llava", ["data:image/png;base64,***"], "messages[0].content[0]", "base64"),
        ("llava", [data_url(RED)] * (MAX_IMAGES + 1), f"messages[0].content[{MAX_IMAGES}]",
         f"at most {MAX_IMAGES}"),
    ],
)  # fmt: skip
def test_bad_images_are_400s_naming_the_part(server, model, urls, param, words):
    with pytest.raises(openai.BadRequestError) as e:
        server.client().chat.completions.create(
            model=model, messages=image_message(*urls), max_tokens=4
        )  # type: ignore[arg-type]
    err = e.value.body
    assert isinstance(err, dict) and err["param"] == param
    assert words in err["message"] and err["message"].startswith(param)


def test_image_urls_fetched_only_when_allowed(tiny_llava, expected, tmp_path):
    """Fetched when allowed, off the event loop: /health answers while a slow image server
    holds a fetch (it sends the image only once /health has answered)."""
    import functools
    import http.server
    import threading

    import httpx

    (tmp_path / "red.png").write_bytes(RED)
    started, release = threading.Event(), threading.Event()

    class Files(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/held.png":
                started.set()
                release.wait(8)  # within the server's fetch timeout
                self.path = "/red.png"
            super().do_GET()

    handler = functools.partial(Files, directory=str(tmp_path))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_address[1]}"
    settings = Settings(models=(ModelSpec("llava", tiny_llava),), kv_cache_gb=1,
                        properties=F32, allow_image_urls=True)  # fmt: skip
    try:
        with ServerThread(create_app(settings)) as s:
            r = s.client().chat.completions.create(
                model="llava", messages=image_message(f"{base}/red.png"), max_tokens=8,
                temperature=0,
            )  # type: ignore[arg-type]  # fmt: skip
            assert r.choices[0].message.content == expected
            with pytest.raises(openai.BadRequestError) as e:
                s.client().chat.completions.create(
                    model="llava", messages=image_message(f"{base}/missing.png"), max_tokens=4
                )  # type: ignore[arg-type]
            body = e.value.body
            assert isinstance(body, dict) and body["param"] == "messages[0].content[0]"
            assert "could not be fetched" in body["message"]

            answers: list[Any] = []
            held = threading.Thread(target=lambda: answers.append(
                s.client().chat.completions.create(
                    model="llava", messages=image_message(f"{base}/held.png"), max_tokens=8,
                    temperature=0,
                )))  # type: ignore[arg-type]  # fmt: skip
            held.start()
            assert started.wait(30)
            try:
                assert httpx.get(f"{s.url}/health", timeout=5).status_code == 200
                assert not answers  # the image was still being fetched
            finally:
                release.set()
            held.join(60)
            assert answers and answers[0].choices[0].message.content == expected
    finally:
        release.set()
        files.shutdown()
