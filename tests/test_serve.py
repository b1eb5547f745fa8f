"""`ovchat serve` over real HTTP: a uvicorn server on a free port, the official openai client.

Most tests share one server on the tiny Llama (context 256) with a batching Engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from ovchat import Engine, GenerationOptions
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

USER = [{"role": "user", "content": "What does the class statement do?"}]
WAIT_SECONDS = 60  # upper bound for polling loops (never an assertion on speed)


class ServerThread:
    """A real uvicorn server for `app` in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    def client(self, **kw: Any) -> openai.OpenAI:
        kw.setdefault("api_key", "unused")
        return openai.OpenAI(base_url=f"{self.url}/v1", max_retries=0, **kw)

    def metrics(self) -> dict[str, float]:
        """Prometheus text → {"name{labels}": value}."""
        out = {}
        for line in httpx.get(f"{self.url}/metrics").text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def wait_idle(self) -> dict[str, float]:
        """Poll until no request runs, waits or is held by the engine; return the metrics."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            m = self.metrics()
            idle = (m["ovchat_requests_running"], m["ovchat_requests_waiting"])
            if idle == (0, 0) and m["ovchat_engine_sequences"] == 0:
                return m
            assert time.monotonic() < deadline, f"server never became idle: {m}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def engine(tiny_llama: Path) -> Iterator[Engine]:
    e = Engine(tiny_llama, backend="batching", max_num_seqs=8)
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(Settings(max_running=8, max_waiting=64), engine)) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: ServerThread) -> openai.OpenAI:
    return server.client()


def generated(server: ServerThread) -> float:
    return server.metrics().get("ovchat_generated_tokens_total", 0.0)


# -- the happy paths ---------------------------------------------------------------------
def test_models_and_health(server, client, engine):
    ids = [m.id for m in client.models.list().data]
    assert ids == [engine.info.name]
    assert client.models.retrieve(engine.info.name).id == engine.info.name
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["model"] == engine.info.name


def test_chat_non_streamed_matches_engine(server, client, engine):
    before = generated(server)
    r = client.chat.completions.create(
        model=engine.info.name, messages=USER, max_tokens=6, temperature=0
    )
    assert r.id.startswith("chatcmpl-") and r.object == "chat.completion"
    assert r.model == engine.info.name and isinstance(r.created, int)
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.index == 0
    # random tiny weights practically never emit the end token within 6 tokens
    assert choice.finish_reason == "length"
    assert r.usage.prompt_tokens == len(engine.prompt_ids(USER))
    assert r.usage.completion_tokens == 6
    assert r.usage.total_tokens == r.usage.prompt_tokens + 6
    want = engine.generate(USER, GenerationOptions(max_new_tokens=6, temperature=0))
    assert choice.message.content == want.text
    assert generated(server) - before == 6  # the metrics count what was generated


def test_chat_streamed_matches_non_streamed(client, engine):
    kw: dict[str, Any] = dict(model=engine.info.name, messages=USER, temperature=0)
    whole = client.chat.completions.create(max_completion_tokens=12, **kw)
    chunks = list(
        client.chat.completions.create(
            max_completion_tokens=12, stream=True, stream_options={"include_usage": True}, **kw
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].id.startswith("chatcmpl-")
    with_choices = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in with_choices][-1] == "length"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 12
    assert usage_chunk.usage.prompt_tokens == whole.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_wire_format(server, engine):
    body = {"messages": USER, "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for e in events[:-2]:
        assert e.startswith("data: ")
        obj = json.loads(e[len("data: ") :])
        assert "usage" not in obj  # only with stream_options.include_usage
    last = json.loads(events[-3][len("data: ") :])
    assert last["choices"][0]["finish_reason"] == "length" and last["choices"][0]["delta"] == {}


def test_stop_strings_and_seed(client, engine):
    kw: dict[str, Any] = dict(model=engine.info.name, messages=USER, max_tokens=24)
    full = client.chat.completions.create(temperature=0, **kw).choices[0].message.content
    words = full.split()
    assert len(words) >= 3
    cut = client.chat.completions.create(temperature=0, stop=[words[1]], **kw).choices[0]
    assert cut.finish_reason == "stop" and words[1] not in cut.message.content
    a = client.chat.completions.create(temperature=1.0, seed=7, **kw).choices[0].message.content
    b = client.chat.completions.create(temperature=1.0, seed=7, **kw).choices[0].message.content
    assert a == b


def test_completions(client, engine):
    prompt = "The class statement"
    r = client.completions.create(
        model=engine.info.name, prompt=prompt, max_tokens=5, temperature=0
    )
    assert r.id.startswith("cmpl-") and r.object == "text_completion"
    assert r.usage.prompt_tokens == len(engine.encode(prompt))  # raw: no template
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"
    want = engine.generate(prompt, GenerationOptions(max_new_tokens=5, temperature=0)).text
    assert r.choices[0].text == want
    parts = list(
        client.completions.create(
            model=engine.info.name, prompt=[prompt], max_tokens=5, temperature=0, stream=True
        )
    )
    assert "".join(p.choices[0].text for p in parts) == want
    assert parts[-1].choices[0].finish_reason == "length"


def test_harmless_fields_are_accepted(client, engine):
    r = client.chat.completions.create(
        model=engine.info.name,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
        ],
        max_tokens=2,
        user="someone",
        presence_penalty=0,
        extra_body={"some_future_field": {"x": 1}},
    )
    assert r.usage.completion_tokens == 2


def test_answer_cut_to_the_window(client, engine):
    # a prompt that leaves 10 tokens: the answer stops there with "length"
    words = "word " * 400
    ids = engine.encode(words)
    prompt = engine.tokenizer.decode(ids[: engine.info.context_length - 10])
    n = len(engine.encode(prompt))
    r = client.completions.create(model=engine.info.name, prompt=prompt, max_tokens=200)
    assert r.usage.completion_tokens <= engine.info.context_length - n
    assert r.choices[0].finish_reason in ("length", "stop")


# -- errors: OpenAI's shape, the right status, and the server keeps serving ----------------
def _post(server: ServerThread, path: str, **kw: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", timeout=30, **kw)


LONG = "word " * 2000  # far beyond the tiny model's 256-token window

ERROR_CASES = [
    # (id, body or raw bytes, status, param, code)
    ("malformed-json", b'{"messages": [', 400, None, "invalid_json"),
    ("not-an-object", b"[1, 2]", 400, None, "invalid_body"),
    ("empty-body", b"", 400, None, "invalid_body"),
    ("missing-messages", {"max_tokens": 3}, 400, "messages", "missing_required_parameter"),
    ("no-messages", {"messages": []}, 400, "messages", "invalid_value"),
    ("wrong-type", {"messages": "hello"}, 400, "messages", "invalid_value"),
    (
        "wrong-content-type",
        {"messages": [{"role": "user", "content": 5}]},
        400,
        "messages[0].content",
        "invalid_value",
    ),
    ("bad-role", {"messages": [{"role": "x", "content": "hi"}]}, 400, "messages[0].role", None),
    ("bad-temperature", {"messages": USER, "temperature": "hot"}, 400, "temperature", None),
    ("temperature-range", {"messages": USER, "temperature": 3}, 400, "temperature", None),
    ("max-tokens-zero", {"messages": USER, "max_tokens": 0}, 400, "max_tokens", None),
    ("max-tokens-huge", {"messages": USER, "max_tokens": 10**6}, 400, "max_tokens", None),
    ("n-9", {"messages": USER, "n": 9}, 400, "n", None),
    ("empty-stop", {"messages": USER, "stop": [""]}, 400, "stop", None),
    (
        "top-logprobs-5",
        {"messages": USER, "logprobs": True, "top_logprobs": 5},
        400,
        "top_logprobs",
        None,
    ),
    ("stream-not-bool", {"messages": USER, "stream": "yes"}, 400, "stream", None),
    ("max-tokens-bool", {"messages": USER, "max_tokens": True}, 400, "max_tokens", None),
    ("seed-beyond-int64", {"messages": USER, "seed": 2**70}, 400, "seed", None),
    (
        "image-part",
        {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        400,
        "messages[0].content",
        None,
    ),
    (
        "lone-surrogate",
        b'{"messages": [{"role": "user", "content": "\\udc00"}]}',  # JSON's escape, not UTF-8
        400,
        "messages[0].content",
        None,
    ),
    ("unknown-model", {"model": "gpt-9", "messages": USER}, 404, "model", "model_not_found"),
    (
        "too-long",
        {"messages": [{"role": "user", "content": LONG}]},
        400,
        "messages",
        "context_length_exceeded",
    ),
]


@pytest.mark.parametrize(
    "body,status,param,code", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_bad_requests(server, client, engine, body, status, param, code):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = _post(server, "/v1/chat/completions", headers={"content-type": "application/json"}, **kw)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"] and err["type"] == "invalid_request_error"
    assert err["param"] == param
    if code is not None:
        assert err["code"] == code
    ok = client.chat.completions.create(model=engine.info.name, messages=USER, max_tokens=2)
    assert ok.usage.completion_tokens == 2  # still serving


def test_errors_through_the_openai_client(client, engine):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nope", messages=USER)
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e2:
        client.completions.create(model=engine.info.name, prompt=LONG)
    assert e2.value.code == "context_length_exceeded" and e2.value.param == "prompt"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=engine.info.name, prompt=["a", "b"])


def test_empty_raw_prompt(server, client, engine):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=engine.info.name, prompt="", max_tokens=2)
    assert e.value.param == "prompt" and "empty" in e.value.message


def test_oversized_body_413(server, client, engine):
    big = {"messages": [{"role": "user", "content": "x" * (2 << 20)}]}
    r = _post(server, "/v1/chat/completions", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it arrives
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}]}'

    r = _post(server, "/v1/chat/completions", content=chunked())
    assert r.status_code == 413
    assert client.chat.completions.create(model=engine.info.name, messages=USER, max_tokens=1)


def test_unknown_route_and_method(server):
    r = httpx.get(f"{server.url}/v1/nothing")
    assert r.status_code == 404 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = httpx.get(f"{server.url}/v1/chat/completions")
    assert r.status_code == 405 and "error" in r.json()


def test_api_key(engine):
    app = create_app(Settings(api_key="s3cret"), engine)
    with ServerThread(app) as s:
        with pytest.raises(openai.AuthenticationError) as e:
            s.client(api_key="wrong").models.list()
        assert e.value.status_code == 401 and e.value.code == "invalid_api_key"
        r = httpx.get(f"{s.url}/v1/models")  # no key at all
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = httpx.post(f"{s.url}/v1/chat/completions", content=b"{oops")  # no key, bad body
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        good = s.client(api_key="s3cret")
        assert good.chat.completions.create(model=engine.info.name, messages=USER, max_tokens=2)
        assert httpx.get(f"{s.url}/health").status_code == 200  # open: for load balancers
        assert httpx.get(f"{s.url}/").status_code == 200


def test_app_loads_and_closes_its_own_engine(tiny_llama):
    app = create_app(Settings(model_dir=tiny_llama, max_running=2))
    with ServerThread(app) as s:
        r = s.client().completions.create(model=tiny_llama.name, prompt="The", max_tokens=2)
        assert r.usage.completion_tokens == 2  # the directory name is accepted as an alias
        assert s.metrics()["ovchat_engine_sequences"] == 0


# -- concurrency ---------------------------------------------------------------------------
class GatedEngine:
    """A real Engine whose streams wait at a gate before their first chunk.

    Only to make "one running, one waiting, the next refused" deterministic on a tiny model
    that would otherwise finish before the third request arrives.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.gate = threading.Event()
        self.cancels: list[threading.Event] = []  # each request's cancel event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def astream(self, prompt: Any, options: Any = None, cancel: Any = None) -> Any:
        self.cancels.append(cancel)
        await asyncio.to_thread(self.gate.wait, WAIT_SECONDS)
        async for chunk in self._engine.astream(prompt, options, cancel):
            yield chunk


def test_queue_full_gives_429(engine):
    gated = GatedEngine(engine)
    app = create_app(Settings(max_running=1, max_waiting=1), gated)  # type: ignore[arg-type]
    with ServerThread(app) as s:
        body = {"messages": USER, "max_tokens": 4, "stream": True}
        results: dict[str, Any] = {}

        def call(name: str) -> None:
            with httpx.stream("POST", f"{s.url}/v1/chat/completions", json=body, timeout=60) as r:
                results[name] = (r.status_code, r.read().decode())

        first = threading.Thread(target=call, args=("running",))
        first.start()
        _wait_for(s, running=1, waiting=0)
        second = threading.Thread(target=call, args=("waiting",))
        second.start()
        _wait_for(s, running=1, waiting=1)
        with pytest.raises(openai.RateLimitError) as e:
            s.client().chat.completions.create(model=engine.info.name, messages=USER)
        assert e.value.status_code == 429 and e.value.body["type"] == "rate_limit_error"
        gated.gate.set()
        first.join(WAIT_SECONDS)
        second.join(WAIT_SECONDS)
        for name in ("running", "waiting"):
            status, text = results[name]
            assert status == 200 and text.endswith("data: [DONE]\n\n"), name
        m = s.wait_idle()
        assert m['ovchat_requests_total{endpoint="/v1/chat/completions",status="429"}'] == 1
        assert m['ovchat_requests_total{endpoint="/v1/chat/completions",status="200"}'] == 2


def _hang_up(url: str, body: dict[str, Any]) -> None:
    """Send a request and leave before the answer (the client times out and disconnects)."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/chat/completions", json=body, timeout=httpx.Timeout(60, read=1))


def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_non_streamed_client_leaving_is_cancelled(engine):
    gated = GatedEngine(engine)
    with ServerThread(create_app(Settings(), gated)) as s:  # type: ignore[arg-type]
        before = s.metrics()
        _hang_up(s.url, {"messages": USER, "max_tokens": 200})
        # the server notices while the request is held at the gate and sets its cancel event
        _until(lambda: gated.cancels and gated.cancels[0].is_set(), "cancel never set")
        gated.gate.set()
        after = s.wait_idle()
        assert after['ovchat_requests_total{endpoint="/v1/chat/completions",status="499"}'] == 1
        made = after["ovchat_generated_tokens_total"] - before["ovchat_generated_tokens_total"]
        assert made == 0  # cancelled before it decoded anything
        assert s.client().chat.completions.create(
            model=engine.info.name, messages=USER, max_tokens=1
        )


def test_client_leaving_the_queue_frees_its_place(engine):
    gated = GatedEngine(engine)
    app = create_app(Settings(max_running=1, max_waiting=1), gated)  # type: ignore[arg-type]
    with ServerThread(app) as s:
        body = {"messages": USER, "max_tokens": 4}
        first = threading.Thread(target=httpx.post, args=(f"{s.url}/v1/chat/completions",),
                                 kwargs={"json": body, "timeout": 60})  # fmt: skip
        first.start()
        _wait_for(s, running=1, waiting=0)
        _hang_up(s.url, body)  # queued, then gone
        _wait_for(s, running=1, waiting=0)  # its place is free again...
        third: dict[str, Any] = {}
        t3 = threading.Thread(
            target=lambda: third.update(
                r=httpx.post(f"{s.url}/v1/chat/completions", json=body, timeout=60)
            )
        )
        t3.start()
        _wait_for(s, running=1, waiting=1)  # ...so this one queues instead of getting 429
        gated.gate.set()
        first.join(WAIT_SECONDS)
        t3.join(WAIT_SECONDS)
        assert third["r"].status_code == 200
        assert len(gated.cancels) == 2  # the one that left never reached the engine
        s.wait_idle()


def _wait_for(s: ServerThread, running: int, waiting: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        h = httpx.get(f"{s.url}/health").json()
        if (h["running"], h["waiting"]) == (running, waiting):
            return
        assert time.monotonic() < deadline, h
        time.sleep(0.02)


def test_32_streams_a_quarter_disconnecting(server, engine):
    before = server.metrics()
    done_key = 'ovchat_requests_total{endpoint="/v1/chat/completions",status="200"}'
    gone_key = 'ovchat_requests_total{endpoint="/v1/chat/completions",status="499"}'
    room = engine.info.context_length - 40

    async def one(i: int, leave: bool) -> dict[str, Any]:
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        messages = [{"role": "user", "content": f"Question {i}: what does the class do?"}]
        stream = await client.chat.completions.create(
            model=engine.info.name,
            messages=messages,
            max_tokens=room if leave else 30,
            temperature=0.8,
            seed=i,
            stream=True,
            stream_options={"include_usage": True},
            # leavers must still be generating when they hang up, whatever the sampling
            extra_body={"ignore_eos": True} if leave else None,
        )
        text, finish, usage, pieces = "", None, None, 0
        async for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for c in chunk.choices:
                text += c.delta.content or ""
                pieces += bool(c.delta.content)
                finish = c.finish_reason or finish
            if leave and pieces >= 3:
                await stream.close()  # hang up mid-answer
                break
        await client.close()
        return {
            "leave": leave,
            "text": text,
            "finish": finish,
            "usage": usage,
            "messages": messages,
        }

    async def all_of_them() -> list[dict[str, Any]]:
        return await asyncio.gather(*(one(i, i % 4 == 0) for i in range(32)))

    results = asyncio.run(all_of_them())
    stayed = [r for r in results if not r["leave"]]
    assert len(stayed) == 24
    for r in stayed:
        u = r["usage"]
        assert r["finish"] in ("stop", "length") and r["text"]
        assert 1 <= u.completion_tokens <= 30
        assert (u.completion_tokens == 30) == (r["finish"] == "length")
        assert u.prompt_tokens == len(engine.prompt_ids(r["messages"]))
    for r in results:
        if r["leave"]:
            assert r["finish"] is None and r["usage"] is None
    after = server.wait_idle()  # nothing running, waiting or held by the engine
    done = after[done_key] - before.get(done_key, 0)
    gone = after[gone_key] - before.get(gone_key, 0)
    # Every request is counted once. A leaver is a 499 unless the server had sent its whole
    # answer before it hung up (on a loaded machine the client can lag that far behind).
    assert done + gone == 32 and done >= 24 and gone >= 4, (done, gone)
    # the disconnected ones were stopped early: far fewer tokens than their budgets
    made = after["ovchat_generated_tokens_total"] - before["ovchat_generated_tokens_total"]
    by_leavers = made - sum(r["usage"].completion_tokens for r in stayed)
    assert by_leavers < 8 * room // 2  # without cancellation they would make 8 * room
    ok = server.client().chat.completions.create(
        model=engine.info.name, messages=USER, max_tokens=3
    )
    assert ok.usage.completion_tokens == 3


def test_metrics_exposition(server, client, engine):
    client.chat.completions.create(model=engine.info.name, messages=USER, max_tokens=3)
    m = server.metrics()
    assert m["ovchat_time_to_first_token_seconds_count"] >= 1
    assert m["ovchat_time_per_output_token_seconds_count"] >= 1
    assert m["ovchat_prompt_tokens_total"] >= len(engine.prompt_ids(USER))
    assert m['ovchat_requests_total{endpoint="/v1/chat/completions",status="200"}'] >= 1
    assert "ovchat_requests_running" in m and "ovchat_requests_waiting" in m


# -- the command ---------------------------------------------------------------------------
def _ovchat() -> str:
    return str(Path(sys.executable).parent / "ovchat")


def test_cli_serves_and_stops(tiny_llama):
    proc = subprocess.Popen(
        [_ovchat(), "serve", "-m", str(tiny_llama), "--port", "0", "--max-running", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OVCHAT_API_KEY": "k"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"ready at (http://127\.0\.0\.1:\d+/) \(API key required\)", line)
        assert m, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        url = m.group(1)
        assert "<title>ovchat</title>" in httpx.get(url).text
        assert httpx.get(url + "v1/models").status_code == 401
        r = httpx.get(url + "v1/models", headers={"Authorization": "Bearer k"})
        assert r.json()["data"][0]["id"]
        # the page's assets are served by the same process, no CDN
        for asset in ("static/app.js", "static/style.css"):
            assert httpx.get(url + asset).status_code == 200
        assert "http" not in httpx.get(url).text.split("<body>")[0].replace("http-equiv", "")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    # uvicorn re-raises Ctrl-C after a graceful shutdown: the CLI's usual 130, no traceback
    assert proc.returncode == 130 and "Traceback" not in err, err


def test_cli_bad_options(tiny_llama):
    from conftest import run_cli

    r = run_cli("serve", "-m", str(tiny_llama), "--port", "70000")
    assert r.returncode == 2 and "--port 70000" in r.stderr and len(r.stderr.splitlines()) == 1
    r = run_cli("serve", "-m", str(tiny_llama), "--max-running", "0")
    assert r.returncode == 2 and "--max-running" in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        r = run_cli("serve", "-m", str(tiny_llama), "--port", port)
    assert r.returncode == 2 and "cannot listen" in r.stderr, r.stderr


@pytest.mark.parametrize("backend", ["pipeline", "batching"])
def test_engine_astream_matches_stream(tiny_llama, backend):
    """The asyncio twin of Engine.stream (the server's path), on both backends."""
    e = Engine(tiny_llama, backend=backend)
    try:
        o = GenerationOptions(max_new_tokens=8, temperature=0)

        async def collect() -> list[Any]:
            return [c async for c in e.astream(USER, o)]

        chunks = asyncio.run(collect())
        want = e.generate(USER, o)
        assert "".join(c.text for c in chunks) == want.text
        assert chunks[-1].finish_reason == want.finish_reason
        assert chunks[-1].generated_tokens == want.generated_tokens

        async def leave_early() -> Any:
            ev = threading.Event()
            gen = e.astream(USER, GenerationOptions(max_new_tokens=200, temperature=0), ev)
            await gen.__anext__()
            await gen.aclose()
            return ev

        assert asyncio.run(leave_early()).is_set()  # leaving sets the request's cancel event
        assert e.generate(USER, GenerationOptions(max_new_tokens=2)).generated_tokens == 2
    finally:
        e.close()
