"""POST /tokenize and /detokenize over real HTTP (llama.cpp's and vLLM's shapes), with the
API key, on the tiny Llama."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_serve import ServerThread

from ovchat import Engine
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

KEY = {"Authorization": "Bearer sesame"}
TEXT = "The class statement defines a class."


@pytest.fixture(scope="module")
def engine(tiny_llama: Path) -> Iterator[Engine]:
    e = Engine(tiny_llama, backend="batching", max_num_seqs=2)
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(Settings(api_key="sesame"), engine)) as s:
        yield s


def post(server: ServerThread, path: str, body: object, **kw: object) -> httpx.Response:
    kw.setdefault("headers", KEY)
    return httpx.post(f"{server.url}{path}", json=body, **kw)  # type: ignore[arg-type]


def test_tokenize_and_back(server, engine):
    r = post(server, "/tokenize", {"content": TEXT})  # llama.cpp's field
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tokens"] == engine.encode(TEXT) and body["count"] == len(body["tokens"])
    assert body["max_model_len"] == engine.info.context_length
    vllm = post(server, "/tokenize", {"model": engine.info.name, "prompt": TEXT}).json()
    assert vllm["tokens"] == body["tokens"]
    back = post(server, "/detokenize", {"tokens": body["tokens"]}).json()
    assert back["content"] == TEXT and back["prompt"] == TEXT
    pieces = post(server, "/tokenize", {"content": TEXT, "with_pieces": True}).json()["tokens"]
    assert [p["id"] for p in pieces] == body["tokens"]
    assert "".join(p["piece"] for p in pieces) == TEXT
    special = post(server, "/tokenize", {"prompt": TEXT, "add_special_tokens": True}).json()
    assert special["count"] >= body["count"]


def test_tokenize_messages_counts_the_prompt(server, engine):
    msgs = [{"role": "user", "content": TEXT}]
    r = post(server, "/tokenize", {"messages": msgs}).json()
    assert r["tokens"] == engine.prompt_ids(msgs)


@pytest.mark.parametrize(
    "path,body,param",
    [
        ("/detokenize", {"tokens": [1, 10**9]}, "tokens[1]"),
        ("/detokenize", {"tokens": [-1]}, "tokens[0]"),
        ("/detokenize", {"tokens": "abc"}, "tokens"),
        ("/tokenize", {"content": 5}, "content"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(server, path, body, param):
    r = post(server, path, body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_tokenize_needs_one_input_and_the_key(server):
    r = post(server, "/tokenize", {})
    assert r.status_code == 400 and "exactly one" in r.json()["error"]["message"]
    assert post(server, "/tokenize", {"content": "x"}, headers={}).status_code == 401
    ok = post(server, "/tokenize", {"content": "x"}, headers={"x-api-key": "sesame"})
    assert ok.status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'ovchat_requests_total{endpoint="/tokenize",status="200"}' in metrics
    assert 'ovchat_requests_total{endpoint="/detokenize",status="400"}' in metrics
