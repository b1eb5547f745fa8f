"""Hostile input against a real server: values the engine cannot take, text that is
not Unicode, bodies that are not JSON, slow and oversized requests, too many connections.
Every answer is a 4xx in OpenAI's shape that names what is wrong and carries no internal
text; the server keeps serving.

One server on the tiny Llama for most tests (with the real uvicorn setup of `ovchat serve`:
ovchat.serve.server), separate small ones where a setting must differ.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from test_serve import USER, WAIT_SECONDS, GatedEngine, ServerThread

from ovchat import Engine
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app
from ovchat.serve.requestmodel import RequestModel
from ovchat.serve.server import uvicorn_config

ENDPOINTS = {
    "/v1/chat/completions": {"messages": USER},
    "/v1/completions": {"prompt": "The class statement"},
}
# What must never reach a client: source paths, binding signatures, addresses, tracebacks.
INTERNAL = re.compile(
    r"(\.cpp|\.py\b|\.hpp|0x[0-9a-fA-F]{6,}|Traceback|site-packages|/home/|/usr/|/tmp/|"
    r"\(self|Exception from|RuntimeError|TypeError|UnicodeEncodeError)"
)
ERROR_KEYS = {"message", "type", "param", "code"}


class Served(ServerThread):
    """ServerThread with `ovchat serve`'s own uvicorn setup (limits, protocol errors)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        super().__init__(app)
        self.server = uvicorn.Server(uvicorn_config(app, settings))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=30, **kw)


def openai_error(r: httpx.Response, status: int, served: str = "") -> dict[str, Any]:
    """The response's error object, after checking its status, shape and decency (`served`:
    the model's name, which may quote it; the tiny test exports are named by their path)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    err = r.json()["error"]
    assert set(err) == ERROR_KEYS and err["message"] and err["type"], err
    message = err["message"].replace(served, "") if served else err["message"]
    assert not INTERNAL.search(message), err["message"]
    return err


@pytest.fixture(scope="module")
def engine(tiny_llama: Path) -> Iterator[Engine]:
    e = Engine(tiny_llama, backend="batching", max_num_seqs=8)
    yield e
    e.close()


SETTINGS = Settings(max_running=8, max_waiting=64)


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[Served]:
    with Served(create_app(SETTINGS, engine), SETTINGS) as s:
        yield s


def still_serving(server: ServerThread) -> None:
    r = httpx.post(f"{server.url}/v1/completions", json={"prompt": "The", "max_tokens": 2})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 2


# -- 1. values the engine's 32-bit floats cannot take: 400 naming the field, even streamed --
TOO_SMALL = [
    ("top_p", 1e-46),  # 0 in float32: genai refuses top_p 0
    ("top_p", 1e-40),  # a float32 subnormal
    ("temperature", 1e-46),
    ("temperature", 5e-324),  # the smallest double
    ("temperature", 1e-40),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("path", list(ENDPOINTS))
@pytest.mark.parametrize("field,value", TOO_SMALL, ids=[f"{f}={v}" for f, v in TOO_SMALL])
def test_values_the_engine_refuses_are_400(server, path, field, value, stream):
    body = {**ENDPOINTS[path], field: value, "max_tokens": 4, "stream": stream}
    err = openai_error(server.post(path, json=body), 400)
    assert err["param"] == field and err["type"] == "invalid_request_error"


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_edge_values_the_engine_takes_are_answered(server, path):
    """Just inside the ranges: answered in full (never a 500, never an error event)."""
    for field, value in [("temperature", 1.2e-38), ("temperature", 2.0), ("top_p", 1.2e-38)]:
        body = {**ENDPOINTS[path], field: value, "max_tokens": 3, "stream": True}
        with httpx.stream("POST", f"{server.url}{path}", json=body, timeout=30) as r:
            text = r.read().decode()
        assert r.status_code == 200 and '"error"' not in text, (field, value, text)
        assert text.endswith("data: [DONE]\n\n")


# -- 2. strings that are not Unicode, in any field: checked once, 400 naming the field -------
SURROGATE = "\\ud800"  # JSON's escape for a lone high surrogate (no UTF-8 encoding exists)
SURROGATE_CASES = [
    # (id, path, raw JSON body, param)
    ("stop", "/v1/chat/completions", f'{{"messages": [], "stop": "{SURROGATE}"}}', "stop"),
    (
        "stop-list",
        "/v1/completions",
        f'{{"prompt": "a", "stop": ["ok", "x{SURROGATE}"]}}',
        "stop[1]",
    ),
    ("model", "/v1/chat/completions", f'{{"model": "{SURROGATE}", "messages": []}}', "model"),
    (
        "content-part",
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": [{"type": "text", "text": "'
        + SURROGATE
        + '"}]}]}',
        "messages[0].content[0].text",
    ),
    (
        "role",
        "/v1/chat/completions",
        f'{{"messages": [{{"role": "{SURROGATE}", "content": "hi"}}]}}',
        "messages[0].role",
    ),
    ("prompt", "/v1/completions", f'{{"prompt": ["{SURROGATE}"]}}', "prompt[0]"),
    ("user", "/v1/completions", f'{{"prompt": "a", "user": "{SURROGATE}"}}', "user"),
    (
        "ignored-field",
        "/v1/completions",
        f'{{"prompt": "a", "some_future_field": {{"x": ["{SURROGATE}"]}}}}',
        "some_future_field.x[0]",
    ),
    ("key", "/v1/completions", f'{{"prompt": "a", "{SURROGATE}": 1}}', None),
    (
        "low-surrogate",
        "/v1/completions",
        '{"prompt": "\\udc00 and more"}',
        "prompt",
    ),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    "path,raw,param", [c[1:] for c in SURROGATE_CASES], ids=[c[0] for c in SURROGATE_CASES]
)
def test_lone_surrogates_anywhere_are_400(server, path, raw, param, stream):
    body = json.loads(raw)
    body["stream"] = stream
    content = json.dumps(body).encode()  # json.dumps escapes the surrogate again: valid JSON
    r = server.post(path, content=content, headers={"content-type": "application/json"})
    err = openai_error(r, 400)
    assert err["param"] == param and err["code"] == "invalid_value"
    r.content.decode("utf-8")  # the answer itself is valid UTF-8


def test_a_pair_of_surrogates_is_text(server):
    """An escaped astral character (a surrogate pair) is valid: not refused."""
    raw = b'{"prompt": "smile \\ud83d\\ude00", "max_tokens": 2}'
    r = server.post("/v1/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_model_names_in_paths_are_echoed_safely(server, engine):
    name = engine.info.name
    for raw in ("%ED%A0%80", "%FF%FE", "x" * 3000):
        r = httpx.get(f"{server.url}/v1/models/{raw}")
        err = openai_error(r, 404, served=name)
        assert err["code"] == "model_not_found"
        assert len(err["message"].replace(name, "")) < 400
    r = server.post("/v1/completions", json={"model": "y" * 5000, "prompt": "a"})
    assert len(openai_error(r, 404, served=name)["message"].replace(name, "")) < 400


def test_every_request_body_derives_from_request_model(server):
    """The one place strings are checked: a new endpoint's body must inherit it."""
    from fastapi.routing import APIRoute

    app = server.server.config.app
    bodies = [r for r in app.routes if isinstance(r, APIRoute) and r.body_field is not None]
    assert bodies, "no route takes a body?"
    for route in bodies:
        model = route.body_field.field_info.annotation
        assert isinstance(model, type) and issubclass(model, RequestModel), route.path


# -- 3. errors never carry internal text, in JSON or in a stream ---------------------------
class FailingEngine(GatedEngine):
    """A real Engine whose generation fails mid-answer with a library's kind of message."""

    async def astream(self, prompt: Any, options: Any = None, cancel: Any = None) -> Any:
        n = 0
        async for chunk in self._engine.astream(prompt, options, cancel):
            yield chunk
            n += 1
            if n == 2:
                raise RuntimeError(
                    "Exception from /home/jenkins/src/cpp/src/sampler.cpp:42:\n"
                    "__call__(self: SomeBinding, arg0: int) at 0x7f3a2b4c5d60"
                )


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_a_failing_generation_says_little_and_logs_the_detail(engine, path, caplog):
    app = create_app(SETTINGS, FailingEngine(engine))  # type: ignore[arg-type]
    with Served(app, SETTINGS) as s, caplog.at_level(logging.ERROR, "ovchat.serve"):
        body = {**ENDPOINTS[path], "max_tokens": 20, "stream": True, "ignore_eos": True}
        with httpx.stream("POST", f"{s.url}{path}", json=body, timeout=30) as r:
            events = r.read().decode().split("\n\n")
        assert events[-2:] == ["data: [DONE]", ""]
        err = json.loads(events[-3].removeprefix("data: "))["error"]
        assert set(err) == ERROR_KEYS and err["message"] == "generation failed"
        assert err["code"] == "generation_failed" and not INTERNAL.search(json.dumps(err))
        assert "sampler.cpp" in caplog.text  # the detail is in the server's log
        r2 = s.post(path, json={**ENDPOINTS[path], "max_tokens": 20, "ignore_eos": True})
        err = openai_error(r2, 500)
        assert err["message"] == "internal error" and "sampler" in caplog.text


# -- 10. the smaller ones -------------------------------------------------------------------
def test_405_says_allow(server):
    r = httpx.get(f"{server.url}/v1/chat/completions")
    err = openai_error(r, 405)
    assert r.headers["allow"] == "POST" and err["code"] == "method_not_allowed"
    r = httpx.delete(f"{server.url}/v1/models")
    assert openai_error(r, 405) and "GET" in r.headers["allow"]


def test_429_says_retry_after(engine):
    gated = GatedEngine(engine)
    settings = Settings(max_running=1, max_waiting=0)
    with Served(create_app(settings, gated), settings) as s:  # type: ignore[arg-type]
        holder = threading.Thread(
            target=s.post, args=("/v1/completions",), kwargs={"json": {"prompt": "a"}}
        )
        holder.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while httpx.get(f"{s.url}/health").json()["running"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        r = s.post("/v1/completions", json={"prompt": "a", "max_tokens": 1})
        err = openai_error(r, 429)
        assert err["code"] == "server_busy" and int(r.headers["retry-after"]) >= 1
        with pytest.raises(openai.RateLimitError):  # the official client reads it as a 429
            s.client().completions.create(model=engine.info.name, prompt="a")
        gated.gate.set()
        holder.join(WAIT_SECONDS)


BAD_BODIES = [
    # (id, raw body, code)
    ("latin-1", b'{"prompt": "caf\xe9"}', "invalid_encoding"),
    ("truncated-utf8", b'{"prompt": "\xe2\x82"}', "invalid_encoding"),
    ("deep-nesting", b'{"prompt": "a", "x": ' + b"[" * 10**5 + b"]" * 10**5 + b"}", "invalid_json"),
    ("nan", b'{"prompt": "a", "temperature": NaN}', None),
    ("huge-number", b'{"prompt": "a", "max_tokens": 1' + b"0" * 5000 + b"}", None),
]


@pytest.mark.parametrize("raw,code", [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
def test_unreadable_bodies_get_a_code(server, raw, code):
    r = server.post("/v1/completions", content=raw, headers={"content-type": "application/json"})
    err = openai_error(r, 400)
    assert err["code"] == code if code else err["code"]
    still_serving(server)


def test_nesting_below_the_parsers_limit_is_fine(server):
    deep = b'{"prompt": "a", "max_tokens": 1, "x": ' + b"[" * 900 + b"]" * 900 + b"}"
    r = server.post("/v1/completions", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_oversized_headers_get_an_openai_error(server):
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:  # a head far beyond the limit, sent in pieces as a real client would
            for _ in range(64):
                sock.sendall(b"x-big: " + b"a" * 16_000 + b"\r\n")
        except OSError:
            pass  # the server answered and closed while we were still sending
        raw = _read_all(sock)
    assert raw.startswith(b"HTTP/1.1 400"), raw
    err = json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]
    assert set(err) == ERROR_KEYS and err["code"] == "invalid_http_request"
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw = _read_all(sock)
    assert raw.startswith(b"HTTP/1.1 400") and b'"invalid_http_request"' in raw
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_openapi_says_400_not_422(server):
    doc = httpx.get(f"{server.url}/openapi.json").json()
    assert "422" not in json.dumps(doc["paths"])
    for path in ENDPOINTS:
        responses = doc["paths"][path]["post"]["responses"]
        for status in ("400", "401", "404", "408", "413", "429", "500", "503"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
        assert "Retry-After" in responses["429"]["headers"]
    assert set(doc["components"]["schemas"]["Error"]["properties"]["error"]["required"]) == (
        ERROR_KEYS
    )


def test_metrics_count_models_by_id_as_one_endpoint(server, engine):
    httpx.get(f"{server.url}/v1/models/{engine.info.name}")
    httpx.get(f"{server.url}/v1/models/nope-{time.time()}")
    httpx.get(f"{server.url}/v1/nothing-here")
    m = server.metrics()
    assert m['ovchat_requests_total{endpoint="/v1/models/{name}",status="200"}'] >= 1
    assert m['ovchat_requests_total{endpoint="/v1/models/{name}",status="404"}'] >= 1
    assert m['ovchat_requests_total{endpoint="other",status="404"}'] >= 1
    assert not any("nope-" in k for k in m)


# -- 6. slow clients and too many connections ------------------------------------------------
def _read_all(sock: socket.socket, timeout: float = WAIT_SECONDS) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture(scope="module")
def strict_server(engine: Engine) -> Iterator[Served]:
    settings = Settings(read_timeout=1.0, max_connections=12)
    with Served(create_app(settings, engine), settings) as s:
        yield s


def _connect(server: ServerThread) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10)


def test_a_body_that_stalls_gets_408(strict_server):
    with _connect(strict_server) as sock:
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"prompt": "a'
        )
        t0 = time.monotonic()
        raw = _read_all(sock)  # returns when the server closes the connection
    assert raw.startswith(b"HTTP/1.1 408"), raw
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout"
    assert time.monotonic() - t0 < WAIT_SECONDS


def test_a_trickled_body_gets_408(strict_server):
    """One byte at a time, always something, never the end: the deadline is for the body."""
    with _connect(strict_server) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        sock.settimeout(0.2)
        raw = b""
        for _ in range(100):  # up to ~20 s of trickling, far beyond the 1 s deadline
            try:
                raw += sock.recv(65536)
                break
            except TimeoutError:
                pass
            try:
                sock.sendall(b" ")
            except OSError:  # closed by the server: what it said is still to be read
                raw += _read_all(sock)
                break
    assert raw.startswith(b"HTTP/1.1 408"), raw


def test_headers_that_stall_get_408(strict_server):
    for start in (b"POST /v1/chat/compl", b"", b"GET /health HTTP/1.1\r\nHost: x\r\n"):
        with _connect(strict_server) as sock:
            if start:
                sock.sendall(start)
            raw = _read_all(sock)
        assert raw.startswith(b"HTTP/1.1 408"), (start, raw)
        assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


def test_slowloris_cannot_take_the_server(strict_server):
    """More half-open connections than the cap: the extra ones are refused at once (503 in
    OpenAI's shape), the others are closed at the read deadline, and the server answers
    throughout."""
    socks = []
    try:
        for _ in range(20):  # cap is 12
            s = _connect(strict_server)
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")  # headers never end
            socks.append(s)
        answers = []
        for s in socks:  # every one is closed by the server: at once, or at the deadline
            try:
                answers.append(_read_all(s))
            except ConnectionResetError:  # closed at once, the bytes it sent unread
                answers.append(b"reset")
        refused = [a for a in answers if a.startswith((b"HTTP/1.1 503", b"reset"))]
        timed_out = [a for a in answers if a.startswith(b"HTTP/1.1 408")]
        assert (len(refused), len(timed_out)) == (20 - 12, 12), answers
        assert any(b'"too_many_connections"' in a for a in refused), refused
    finally:
        for s in socks:
            s.close()
    r = strict_server.post("/v1/completions", json={"prompt": "The", "max_tokens": 2})
    assert r.status_code == 200, r.text


def test_many_connections_below_the_cap_are_served(strict_server):
    """The cap counts open connections: ordinary keep-alive clients below it are served."""
    clients = [httpx.Client(base_url=strict_server.url, timeout=30) for _ in range(8)]
    try:
        for _ in range(2):
            for c in clients:
                assert c.get("/health").status_code == 200
    finally:
        for c in clients:
            c.close()


# -- 7. grammars: bounded before compiling, compiled off the event loop -----------------------
def _nested_arrays(depth: int) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "integer"}
    for _ in range(depth):
        s = {"type": "array", "items": s}
    return s


def _with_schema(schema: dict[str, Any]) -> dict[str, Any]:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    return {"messages": USER, "max_tokens": 4, "response_format": fmt}


def _with_tool(schema: dict[str, Any]) -> dict[str, Any]:
    fn = {"name": "t", "parameters": {"type": "object", "properties": {"x": schema}}}
    return {"messages": USER, "max_tokens": 4, "tools": [{"type": "function", "function": fn}]}


OVER_LIMITS = {
    "deep": (_nested_arrays(80), "levels"),
    "pattern": ({"type": "string", "pattern": "(a|b|c|d)" * 2000}, "characters"),
}


@pytest.mark.parametrize("shape", list(OVER_LIMITS))
def test_schemas_over_the_limits_are_a_400_naming_the_field(server, shape):
    schema, unit = OVER_LIMITS[shape]
    err = openai_error(server.post("/v1/chat/completions", json=_with_schema(schema)), 400)
    assert err["param"] == "response_format" and "too large" in err["message"], err
    assert unit in err["message"] and "limit" in err["message"]
    err = openai_error(server.post("/v1/chat/completions", json=_with_tool(schema)), 400)
    assert err["param"] == "tools[0].function.parameters" and unit in err["message"], err
    params = {"type": "object", "properties": {"x": schema}}
    tool = {"type": "function", "name": "t", "parameters": params}
    body = {"input": "hi", "max_output_tokens": 4, "tools": [tool]}
    err = openai_error(server.post("/v1/responses", json=body), 400)
    assert err["param"] == "tools[0].parameters" and unit in err["message"], err
    fmt = {"type": "json_schema", "name": "x", "schema": schema}
    body = {"input": "hi", "max_output_tokens": 4, "text": {"format": fmt}}
    err = openai_error(server.post("/v1/responses", json=body), 400)
    assert err["param"] == "text.format" and unit in err["message"], err
    still_serving(server)


def test_deep_schemas_within_the_limits_are_answered(server):
    """14 levels of arrays once made a grammar of ~1 MB that xgrammar could not hold."""
    for depth in (14, 40):
        r = server.post("/v1/chat/completions", json=_with_schema(_nested_arrays(depth)))
        assert r.status_code == 200, r.text
    still_serving(server)


def _heavy(nonce: str) -> dict[str, Any]:
    """A schema within the limits that still takes xgrammar a while (patterns: ~15,400
    characters in all); `nonce` makes it new to the engine's cache of compiled schemas."""
    props = {f"p{i}": {"type": "string", "pattern": f"({i}|a|b|{nonce})" * 99} for i in range(16)}
    return {"type": "object", "properties": props}


class SlowPlans:
    """A real Engine whose plan() (where a request's grammar is compiled) first waits at a
    gate: a compile that takes as long as the test wants, wherever the server runs it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def plan(self, *args: Any, **kw: Any) -> Any:
        self.entered.set()
        self.gate.wait(WAIT_SECONDS)
        return self._engine.plan(*args, **kw)


def test_health_answers_while_a_schema_compiles(engine):
    slow = SlowPlans(engine)
    with Served(create_app(SETTINGS, slow), SETTINGS) as s:  # type: ignore[arg-type]
        answer: list[httpx.Response] = []
        body = _with_schema(_heavy("q"))
        thread = threading.Thread(
            target=lambda: answer.append(s.post("/v1/chat/completions", json=body))
        )
        thread.start()
        try:
            assert slow.entered.wait(WAIT_SECONDS)
            # the compile holds neither the event loop nor the GIL: /health answers meanwhile
            r = httpx.get(f"{s.url}/health", timeout=WAIT_SECONDS / 4)
            assert r.status_code == 200 and not answer
        finally:
            slow.gate.set()
            thread.join(WAIT_SECONDS)
        assert answer[0].status_code == 200, answer[0].text


def test_a_schema_that_compiles_too_long_is_a_400(engine):
    settings = Settings(max_running=2, max_waiting=2, grammar_timeout=0.05)
    with Served(create_app(settings, engine), settings) as s:
        r = s.post("/v1/chat/completions", json=_with_schema(_heavy("z")))
        err = openai_error(r, 400)
        assert err["param"] == "response_format" and "did not compile within" in err["message"]
        assert httpx.get(f"{s.url}/health").status_code == 200
        still_serving(s)


# -- 8. a KV-cache pool that runs out: never a silent "stop" ----------------------------------
POOL_BLOCKS = 9  # 288 tokens of the tiny Llama: one full window (256) and a little more


@pytest.fixture(scope="module")
def small_pool(tiny_llama: Path) -> Iterator[Served]:
    from ovchat.engine import kvcache

    gb = POOL_BLOCKS * (kvcache.block_bytes(tiny_llama, "CPU", {}) or 0) / kvcache.GIB
    e = Engine(tiny_llama, backend="batching", max_num_seqs=8, kv_cache_gb=gb * 1.001)
    assert e.kv_pool_tokens == POOL_BLOCKS * kvcache.CPU_BLOCK_TOKENS
    with Served(create_app(SETTINGS, e), SETTINGS) as s:
        yield s
    e.close()


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_answers_that_can_never_fit_the_kv_cache_are_a_400(small_pool, path):
    body = {**ENDPOINTS[path], "n": 8, "max_tokens": 200}
    err = openai_error(small_pool.post(path, json=body), 400)
    assert err["param"] == "max_tokens" and "KV cache" in err["message"], err
    assert "n)" in err["message"] and "288" in err["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_answers_cut_by_a_full_kv_cache_end_with_length(small_pool, path, stream):
    """8 answers of up to a whole window each (no max_tokens): the pool runs out midway."""
    body = {**ENDPOINTS[path], "n": 8, "ignore_eos": True, "temperature": 1.0, "stream": stream}
    r = small_pool.post(path, json=body)
    assert r.status_code == 200, r.text
    if stream:
        events = [json.loads(x[6:]) for x in r.text.split("\n\n") if x.startswith("data: {")]
        ends = [c for e in events for c in e["choices"] if c["finish_reason"]]
        assert r.text.rstrip().endswith("data: [DONE]")
    else:
        ends = r.json()["choices"]
    assert len(ends) == 8
    for c in ends:  # the client can tell a cut answer from a finished one
        assert c["finish_reason"] == "length" and c["finish_detail"] == "kv_cache_full", c
    deadline = time.monotonic() + WAIT_SECONDS
    while small_pool.metrics()["ovchat_kv_cache_usage_ratio"] != 0:  # nothing runs: back to 0
        assert time.monotonic() < deadline
        time.sleep(0.05)


# -- 9. keys, WebSockets, names --------------------------------------------------------------
def test_a_non_ascii_authorization_is_a_401(engine, caplog):
    settings = Settings(api_key="s3crét", max_running=2, max_waiting=2)
    with Served(create_app(settings, engine), settings) as s, caplog.at_level(logging.DEBUG):
        for auth in (b"Bearer caf\xe9", b"Bearer \xe2\x82\xac", b"\xff\xfe", b"Bearer s3cr\xe9t"):
            r = httpx.get(f"{s.url}/v1/models", headers=[(b"Authorization", auth)])
            assert openai_error(r, 401)["code"] == "invalid_api_key", auth
        good = "Bearer s3crét".encode()  # a key is compared as UTF-8 bytes
        r = httpx.get(f"{s.url}/v1/models", headers=[(b"Authorization", good)])
        assert r.status_code == 200
    assert "Traceback" not in caplog.text and "compare_digest" not in caplog.text


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    ],
    ids=["self", "cycle"],
)
def test_a_schema_that_accepts_nothing_is_a_400(server, schema):
    """Once a 200 with text that is not JSON: genai constrained nothing."""
    for stream in (False, True):
        body = {**_with_schema(schema), "stream": stream}
        err = openai_error(server.post("/v1/chat/completions", json=body), 400)
        assert err["param"] == "response_format" and "accepts no JSON value" in err["message"]


class PausedStreams:
    """A real Engine whose streams pause after their first piece of text, until `gate`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.first = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def astream(self, prompt: Any, options: Any = None, cancel: Any = None) -> Any:
        import asyncio

        paused = False
        async for chunk in self._engine.astream(prompt, options, cancel):
            yield chunk
            if chunk.text and not paused:
                paused = True
                self.first.set()
                await asyncio.to_thread(self.gate.wait, WAIT_SECONDS)


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_a_stream_cut_by_shutdown_never_says_stop(tiny_llama, path):
    engine = Engine(tiny_llama, backend="batching", max_num_seqs=2)  # cancel_all is for good
    paused = PausedStreams(engine)
    app = create_app(SETTINGS, paused)  # type: ignore[arg-type]
    body = {**ENDPOINTS[path], "max_tokens": 50, "ignore_eos": True, "stream": True}
    try:
        with Served(app, SETTINGS) as s:
            out: list[str] = []
            thread = threading.Thread(target=lambda: out.append(s.post(path, json=body).text))
            thread.start()
            assert paused.first.wait(WAIT_SECONDS)
            app.state.server.stop_generating()  # what SIGTERM does first
            paused.gate.set()
            thread.join(WAIT_SECONDS)
    finally:
        paused.gate.set()
        engine.close()
    events = [e for e in out[0].split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]", events[-3:]
    assert json.loads(events[-2][6:])["error"]["code"] == "server_shutting_down"
    finishes = [c["finish_reason"] for e in events[:-2] for c in json.loads(e[6:])["choices"]]
    assert finishes and not any(finishes), events  # a simple client sees no complete answer


def test_a_head_over_the_limit_in_one_write_is_a_400(server):
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nx-big: " + b"a" * 60_000 + b"\r\n\r\n"
    with _connect(server) as sock:
        sock.sendall(head)  # all at once: h11 alone checks only a head still incomplete
        raw = _read_all(sock)
    assert raw.startswith(b"HTTP/1.1 400"), raw[:200]
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "invalid_http_request"
    ok = (
        b"GET /health HTTP/1.1\r\nHost: x\r\nx-big: "
        + b"a" * 15_000
        + b"\r\nConnection: close\r\n\r\n"
    )
    with _connect(server) as sock:
        sock.sendall(ok)
        assert _read_all(sock).startswith(b"HTTP/1.1 200")


def test_openapi_documents_metrics_and_streams(server):
    doc = httpx.get(f"{server.url}/openapi.json").json()
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    for path in (*ENDPOINTS, "/v1/responses"):
        ok = doc["paths"][path]["post"]["responses"]["200"]
        assert {"application/json", "text/event-stream"} <= set(ok["content"]), path
        assert "stream" in ok["description"]


def test_a_websocket_upgrade_is_answered_as_http(server):
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    r = httpx.get(f"{server.url}/v1/ws", headers=upgrade)
    openai_error(r, 404)
    r = httpx.get(f"{server.url}/v1/models", headers=upgrade)
    assert r.status_code == 200 and r.json()["object"] == "list"


def test_a_model_exported_from_a_local_dir_is_served_by_its_name(server, engine, tiny_llama):
    """Not by the absolute path it was exported from: ids show in every answer and error."""
    source = str(Path(tiny_llama).parent)  # the tiny models' directory: in no name
    name = engine.info.name
    assert "/" not in name and name
    ids = [m["id"] for m in httpx.get(f"{server.url}/v1/models").json()["data"]]
    assert ids == [name]
    assert httpx.get(f"{server.url}/health").json()["model"] == name
    assert source not in httpx.get(f"{server.url}/metrics").text
    r = server.post("/v1/completions", json={"model": "nope", "prompt": "a"})
    assert source not in r.text
    r = server.post("/v1/completions", json={"model": name, "prompt": "a", "max_tokens": 1})
    assert r.status_code == 200 and r.json()["model"] == name
