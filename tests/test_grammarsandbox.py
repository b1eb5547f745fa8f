"""The grammar sandbox (engine/grammarsandbox.py) behind a real server: a grammar compile
that crashes or runs past --grammar-timeout is killed and costs that one request a 400
naming its field; the server, /health and other requests never notice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_serve_hostile import Served, openai_error, still_serving

from ovchat import Engine
from ovchat.engine.grammarsandbox import CRASHED, GrammarCheck
from ovchat.engine.structured import constraints
from ovchat.options import GenerationOptions
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

WAIT_SECONDS = 120  # bounds for waits on a loaded machine, never a speed assertion
USER = [{"role": "user", "content": "Say something."}]
SETTINGS = Settings(max_running=4, max_waiting=16)


@pytest.fixture(scope="module")
def engine(tiny_llama: Path) -> Iterator[Engine]:
    e = Engine(tiny_llama, backend="batching", max_num_seqs=4)
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[Served]:
    with Served(create_app(SETTINGS, engine), SETTINGS) as s:
        yield s


def _with_schema(schema: dict[str, Any]) -> dict[str, Any]:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    return {"messages": USER, "max_tokens": 4, "response_format": fmt}


def _small(nonce: str) -> dict[str, Any]:
    return {"type": "object", "properties": {nonce: {"type": "integer"}}, "required": [nonce]}


def _slow(nonce: str) -> dict[str, Any]:
    """Within the limits, yet a compile of a second or more (patterns, ~15,400 characters in
    all); `nonce` makes it new to the sandbox's memory."""
    props = {f"p{i}": {"type": "string", "pattern": f"({i}|a|b|{nonce})" * 99} for i in range(16)}
    return {"type": "object", "properties": props}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _warm(check: GrammarCheck, nonce: str) -> int:
    """Start the sandbox (a compile of a small schema, unhurried); its pid."""
    options = GenerationOptions(json_schema=__import__("json").dumps(_small(nonce)))
    check.choose(constraints(options))
    assert check.pid is not None
    return check.pid


def test_a_killed_sandbox_costs_its_request_a_400_and_nothing_else(server, engine):
    check = engine.grammar_check()
    old = _warm(check, "warm")
    answer: list[httpx.Response] = []
    body = _with_schema(_slow("k"))
    thread = threading.Thread(
        target=lambda: answer.append(server.post("/v1/chat/completions", json=body))
    )
    thread.start()
    try:
        assert check.compiling.wait(WAIT_SECONDS)
        os.kill(old, signal.SIGKILL)  # as a crash inside the grammar library would end it
    finally:
        thread.join(WAIT_SECONDS)
    err = openai_error(answer[0], 400)
    assert err["param"] == "response_format" and CRASHED in err["message"], err
    assert check.pid is None and _gone(old)
    # the same schema again is refused from memory: the sandbox is not started for it
    err = openai_error(server.post("/v1/chat/completions", json=body), 400)
    assert CRASHED in err["message"] and check.pid is None, err
    # everything else is served: /health, a plain answer, a new constrained one (new sandbox)
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    still_serving(server)
    r = server.post("/v1/chat/completions", json=_with_schema(_small("after")))
    assert r.status_code == 200, r.text
    assert check.pid not in (None, old)


def test_a_compile_past_the_time_limit_is_killed(engine):
    check = engine.grammar_check()
    settings = Settings(max_running=2, max_waiting=2, grammar_timeout=0.05)
    with Served(create_app(settings, engine), settings) as s:
        old = _warm(check, "warm2")
        t0 = time.monotonic()
        r = s.post("/v1/chat/completions", json=_with_schema(_slow("t")))
        waited = time.monotonic() - t0
        err = openai_error(r, 400)
        assert err["param"] == "response_format", err
        assert "did not compile within 0.05 s" in err["message"], err
        assert check.pid is None and _gone(old)  # the compile was stopped, not left running
        assert httpx.get(f"{s.url}/health", timeout=30).status_code == 200
        still_serving(s)
    # a compile allowed longer goes through, in a new sandbox (the refusal held only for
    # time limits no longer than the one it failed at)
    options = GenerationOptions(json_schema=__import__("json").dumps(_slow("t")))
    assert check.choose(constraints(options), WAIT_SECONDS + waited)
    assert check.pid not in (None, old)


def test_a_remembered_schema_never_waits_for_a_compile(server, engine):
    check = engine.grammar_check()
    body = _with_schema(_small("memo"))
    assert server.post("/v1/chat/completions", json=body).status_code == 200  # remembered
    with check._lock:  # the sandbox busy, as with another request's long compile
        r = server.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
