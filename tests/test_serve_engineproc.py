"""The engine process (engine/remote.py, engine/enginecore.py) behind a real server: /health
answers while a long prefill step runs, a killed engine process gives 503s and is
restarted, and a client that leaves cancels its request inside the engine process."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_serve import ServerThread

from ovchat.engine.remote import EngineClient
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

WAIT_SECONDS = 180  # bounds for polling loops on a loaded machine, never a speed assertion
USER = [{"role": "user", "content": "What does the class statement do?"}]


def served(s: ServerThread) -> Any:
    return s.server.config.app.state.server.pool.default


def engine_of(s: ServerThread) -> EngineClient:
    engine = served(s).engine
    assert isinstance(engine, EngineClient)
    return engine


def chat(s: ServerThread, **kw: Any) -> httpx.Response:
    body = {"messages": USER, "max_tokens": 4, **kw}
    return httpx.post(f"{s.url}/v1/chat/completions", json=body, timeout=WAIT_SECONDS)


# -- the tiny model: fast, in the default suite ----------------------------------------------
@pytest.fixture(scope="module")
def tiny_server(tiny_llama: Path) -> Iterator[ServerThread]:
    settings = Settings(model_dir=tiny_llama, kv_cache_gb=1, properties={"CACHE_DIR": ""})
    with ServerThread(create_app(settings)) as s:
        yield s


def test_answers_come_from_the_engine_process(tiny_server):
    engine = engine_of(tiny_server)
    assert engine.alive and engine.pid != os.getpid()
    r = chat(tiny_server)
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] >= 1
    stream = chat(tiny_server, stream=True, max_tokens=6, ignore_eos=True)
    events = [ln[6:] for ln in stream.text.splitlines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "length"
    assert engine.finished["length"] >= 1


def test_killed_engine_process_503_then_restarted(tiny_server):
    old = engine_of(tiny_server)
    os.kill(old.pid, signal.SIGKILL)
    r = chat(tiny_server)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"]
    assert r.json()["error"]["code"] in ("model_restarting", "engine_stopped")
    deadline = time.monotonic() + WAIT_SECONDS
    while (r := chat(tiny_server)).status_code != 200:
        assert r.status_code == 503, r.text
        assert time.monotonic() < deadline, "the engine process was never restarted"
        time.sleep(0.2)
    new = engine_of(tiny_server)
    assert new is not old and new.pid != old.pid and new.alive
    assert not old.alive
    metrics = httpx.get(f"{tiny_server.url}/metrics").text
    assert (
        f'ovchat_model_unloads_total{{model="{served(tiny_server).id}",reason="crashed"}} 1.0'
        in metrics
    )


def test_grammars_compile_in_the_sandbox_not_in_the_engine_process(tiny_server):
    """A constraint is compiled first in the server's grammar sandbox (a child of the
    server's process); the engine process builds the one accepted and starts no sandbox of
    its own. Killing the sandbox mid-way leaves the engine process alone."""
    import psutil

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    r = chat(tiny_server, response_format=fmt, max_tokens=12)
    assert r.status_code == 200, r.text
    engine = engine_of(tiny_server)
    sandbox = engine.grammar_check().pid
    assert sandbox is not None
    assert psutil.Process(sandbox).ppid() == os.getpid()
    assert not psutil.Process(engine.pid).children(recursive=True)
    os.kill(sandbox, signal.SIGKILL)
    schema["properties"]["m"] = {"type": "boolean"}  # new: it needs the sandbox again
    r = chat(tiny_server, response_format=fmt, max_tokens=12)
    assert r.status_code == 200, r.text
    assert engine.alive and engine_of(tiny_server) is engine
    assert engine.grammar_check().pid not in (None, sandbox)


# -- the real model: long prompts and answers ------------------------------------------------
@pytest.fixture(scope="module")
def real_server(smollm2: Path) -> Iterator[ServerThread]:
    # One step prefills a whole 3,000-token prompt: it lasts seconds.
    settings = Settings(model_dir=smollm2, kv_cache_gb=1, prefill_chunk=4096)
    with ServerThread(create_app(settings)) as s:
        yield s


def long_prompt(tokens: int) -> str:
    from conftest import corpus_lines

    text = f"[{time.time_ns()}] " + "\n".join(corpus_lines())
    return text[: tokens * 4]  # ~4 characters per token of English


@pytest.mark.real
def test_health_answers_during_a_long_prefill_step(real_server):
    s = real_server
    long: dict[str, Any] = {}

    def send_long() -> None:
        t0 = time.perf_counter()
        body = {"prompt": long_prompt(3000), "max_tokens": 1}
        r = httpx.post(f"{s.url}/v1/completions", json=body, timeout=WAIT_SECONDS)
        long["seconds"], long["status"] = time.perf_counter() - t0, r.status_code

    sender = threading.Thread(target=send_long)
    sender.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while engine_of(s).status().active + engine_of(s).status().pending == 0:
        assert time.monotonic() < deadline and sender.is_alive(), long
        time.sleep(0.01)
    latencies = []
    while sender.is_alive():  # while the prefill step runs
        t0 = time.perf_counter()
        r = httpx.get(f"{s.url}/health", timeout=WAIT_SECONDS)
        if sender.is_alive():
            latencies.append(time.perf_counter() - t0)
        assert r.status_code == 200
        time.sleep(0.05)
    sender.join()
    assert long["status"] == 200
    # In the server's own process, the step would hold the event loop for all of it: no
    # /health answer at all until the prompt was prefilled.
    assert len(latencies) >= 3, (latencies, long)
    assert max(latencies) < 2.0, (latencies, long)


@pytest.mark.real
@pytest.mark.parametrize("stream", [True, False])
def test_client_leaving_cancels_in_the_engine_process(real_server, stream):
    s = real_server
    engine = engine_of(s)
    before = engine.finished["cancelled"]
    body = {"messages": USER, "max_tokens": 4000, "ignore_eos": True, "stream": stream}
    url = f"{s.url}/v1/chat/completions"
    if stream:
        with httpx.stream("POST", url, json=body, timeout=60) as r:
            for line in r.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    break  # text is flowing: leave
    else:  # the whole answer would take minutes: give up once tokens are being made
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, json=body, timeout=httpx.Timeout(60, read=3))
    deadline = time.monotonic() + WAIT_SECONDS
    while engine.finished["cancelled"] == before:
        assert time.monotonic() < deadline, "the cancel never reached the engine process"
        time.sleep(0.05)
    s.wait_idle()
    assert engine.status().active == 0


@pytest.mark.real
def test_killed_during_a_stream_ends_it_with_an_error_event(real_server):
    s = real_server
    engine = engine_of(s)
    body = {"messages": USER, "max_tokens": 4000, "ignore_eos": True, "stream": True}
    events = []
    with httpx.stream("POST", f"{s.url}/v1/chat/completions", json=body, timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
                if len(events) == 3:
                    os.kill(engine.pid, signal.SIGKILL)
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "engine_stopped" and "restarted" in error["message"]
    deadline = time.monotonic() + WAIT_SECONDS
    while (r2 := httpx.get(f"{s.url}/health")).json()["models"] != {served(s).id: "loaded"}:
        assert time.monotonic() < deadline, r2.text
        time.sleep(0.2)


class Held(threading.Thread):
    """A streamed request of client `user`, held open until `leave` is set."""

    def __init__(self, url: str, user: str) -> None:
        super().__init__(daemon=True)
        self.url, self.user = url, user
        self.admitted, self.leave = threading.Event(), threading.Event()

    def run(self) -> None:
        body = {"messages": USER, "max_tokens": 4000, "ignore_eos": True, "stream": True}
        url = f"{self.url}/v1/chat/completions"
        with httpx.stream("POST", url, json={**body, "user": self.user}, timeout=60) as r:
            self.admitted.set()  # headers are sent once a slot is had
            for _ in r.iter_lines():
                if self.leave.is_set():
                    return


@pytest.mark.real
def test_a_lone_client_is_not_starved_by_another_clients_flood(smollm2: Path):
    settings = Settings(model_dir=smollm2, kv_cache_gb=1, max_running=1, max_waiting=4)
    with ServerThread(create_app(settings)) as s:
        flood = [Held(s.url, "a"), Held(s.url, "a")]
        flood[0].start()
        assert flood[0].admitted.wait(WAIT_SECONDS)
        flood[1].start()  # the same client: it queues for the one slot
        deadline = time.monotonic() + WAIT_SECONDS
        while s.metrics()["ovchat_requests_waiting"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Another client's request goes ahead of the flood's queued one, on a reserved slot.
        r = chat(s, user="b")
        assert r.status_code == 200, r.text
        m = s.metrics()
        assert m["ovchat_requests_waiting"] == 1 and m["ovchat_requests_running"] == 1
        assert not flood[1].admitted.is_set()
        for held in flood:
            held.leave.set()
        for held in flood:
            held.join(WAIT_SECONDS)
        s.wait_idle()
