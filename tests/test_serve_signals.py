"""Stopping `ovchat serve` with answers in flight: SIGINT and SIGTERM end every
stream cleanly (an error event in OpenAI's shape, then [DONE]), answer non-streamed
requests with a 503, close the engine, print the "stopped" line and exit 130 / 143.

A real `ovchat serve` subprocess on SmolLM2 (its answers are long enough to be cut; the tiny
model finishes its 256-token window before a signal can land), real streaming clients.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

pytestmark = pytest.mark.real
WAIT_SECONDS = 120  # bounds for polling loops, never a speed assertion
LONG = {"max_tokens": 4000, "ignore_eos": True, "temperature": 0.7}


def _serve(model: Path) -> tuple[subprocess.Popen[str], str, str]:
    exe = str(Path(sys.executable).parent / "ovchat")
    proc = subprocess.Popen(
        [exe, "serve", "-m", str(model), "--port", "0", "--max-running", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OVCHAT_API_KEY": ""},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"serve: (.+) ready at (http://127\.0\.0\.1:\d+)/", line)
    if not m:
        proc.kill()
        pytest.fail(f"no ready line: {line!r} {proc.communicate()[1]}")
    return proc, m.group(2), m.group(1)


class Stream(threading.Thread):
    """One streamed chat completion read to its end; `started` once text has arrived."""

    def __init__(self, url: str, i: int, model: str = "") -> None:
        super().__init__(daemon=True)
        self.url, self.i, self.model = url, i, model
        self.started = threading.Event()
        self.events: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        body = {"messages": [{"role": "user", "content": f"Story {self.i}, please."}], **LONG}
        try:
            with httpx.stream(
                "POST", f"{self.url}/v1/chat/completions", json={**body, "stream": True},
                timeout=WAIT_SECONDS,
            ) as r:  # fmt: skip
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line:
                        self.events.append(line)
                    if len(self.events) >= 3:
                        self.started.set()
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.started.set()


class OpenAIStream(Stream):
    """The same through the official client: it must raise the server's error, not a
    broken connection."""

    def run(self) -> None:
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key="x", max_retries=0)
        try:
            stream = client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": "A long story."}],
                stream=True,
                max_tokens=LONG["max_tokens"],
                extra_body={"ignore_eos": True},
            )
            for _ in stream:
                self.started.set()
        except BaseException as e:
            self.error = e
        finally:
            self.started.set()


class Plain(threading.Thread):
    """A non-streamed request in flight."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.response: httpx.Response | None = None

    def run(self) -> None:
        body = {"messages": [{"role": "user", "content": "Tell me more."}], **LONG}
        self.response = httpx.post(
            f"{self.url}/v1/chat/completions", json=body, timeout=WAIT_SECONDS
        )


def _wait_running(url: str, n: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while httpx.get(f"{url}/health").json()["running"] < n:
        assert time.monotonic() < deadline, "requests never started"
        time.sleep(0.05)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_streams_cleanly(smollm2, sig, code):
    proc, url, name = _serve(smollm2)
    try:
        streams: list[Any] = [Stream(url, i) for i in range(2)] + [OpenAIStream(url, 9, name)]
        plain = Plain(url)
        for t in [*streams, plain]:
            t.start()
        for s in streams:
            assert s.started.wait(WAIT_SECONDS)
        _wait_running(url, 4)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=WAIT_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    for t in [*streams, plain]:
        t.join(WAIT_SECONDS)
    assert proc.returncode == code, err
    assert err.rstrip().endswith("ovchat serve: stopped"), err
    assert "Traceback" not in err and "ERROR" not in err, err
    for s in streams[:2]:
        assert s.error is None, s.error
        assert s.events[-1] == "data: [DONE]", s.events[-3:]
        err_event = json.loads(s.events[-2].removeprefix("data: "))["error"]
        assert err_event["code"] == "server_shutting_down" and err_event["type"] == "server_error"
        assert any('"content"' in e for e in s.events[1:-2])  # it was cut mid-answer
    assert isinstance(streams[2].error, openai.APIError), streams[2].error
    assert not isinstance(streams[2].error, openai.APIConnectionError)
    assert "shutting down" in str(streams[2].error)
    assert plain.response is not None and plain.response.status_code == 503
    assert plain.response.json()["error"]["code"] == "server_shutting_down"
    assert plain.response.headers["retry-after"]
