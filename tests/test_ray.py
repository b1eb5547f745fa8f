"""`ovchat serve --ray` for real: the CLI starts a local Ray instance with two replicas of a
tiny model (one instance for the whole module, stopped at its end), driven with the
official `openai` client; one replica is killed with SIGKILL in the middle of a load."""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import psutil
import pytest

pytest.importorskip("ray.serve", reason="the ray extra is not installed")
from ovchat.serve.ray_metrics import PUSH_SECONDS

pytestmark = pytest.mark.ray

REPLICAS = 2
START_TIMEOUT = 240  # Ray's start (~10 s) and two replicas loading on a busy 2-core machine
RESTART_TIMEOUT = 120
LOAD_STREAMS = 12
LOAD_JSON = 4
MAX_TOKENS = 200  # the tiny model's window is 256 positions
REPLICA_TITLE = "ServeReplica:ovchat:ovchat"


class RayServer:
    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url

    def replica_processes(self) -> list[psutil.Process]:
        out = []
        for p in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if REPLICA_TITLE in " ".join(p.cmdline()):
                    out.append(p)
            except psutil.Error:
                pass
        return out

    def replicas_in_metrics(self) -> set[str]:
        text = httpx.get(f"{self.url}/metrics", timeout=30).text
        return set(re.findall(r'ovchat_models_loaded\{replica="([^"]+)"\} 1\.0', text))

    def wait_for_replicas(self, old: set[str]) -> set[str]:
        """REPLICAS replicas with their model loaded in /metrics (each publishes every 2 s),
        not all of them in `old`."""
        deadline = time.monotonic() + RESTART_TIMEOUT
        while time.monotonic() < deadline:
            now = self.replicas_in_metrics()
            if len(now) == REPLICAS and now != old:
                return now
            time.sleep(1)
        raise AssertionError(f"replicas in /metrics: {now} (before: {old})")

    def client(self, **kw: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="none", **kw)  # type: ignore[arg-type]


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_server(tiny_llama: Path) -> Iterator[RayServer]:
    exe = Path(sys.executable).parent / "ovchat"
    cmd = [str(exe), "serve", "--ray", "--replicas", str(REPLICAS), "-m", str(tiny_llama)]
    cmd += ["--port", str(_free_port()), "--kv-cache-gb", "0.05"]
    env = {**os.environ, "RAY_METRICS_PORT": str(_free_port())}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        line = proc.stdout.readline() if ready else "(nothing)"  # "... ready at URL ..."
        m = re.search(r"ready at (http://\S+?)/? ", line)
        assert m, f"ovchat serve --ray did not start: {line!r}"
        yield RayServer(proc, m.group(1))
    finally:
        family = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        left = [
            p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
        ]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert code == 130, code
        assert not left, f"processes left behind: {left}"


def test_two_replicas_answer_the_openai_client(ray_server: RayServer):
    client = ray_server.client()
    model = client.models.list().data[0].id
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=8
    )
    assert answer.choices[0].finish_reason in ("length", "stop")
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, stream=True
    )
    finishes = [c.choices[0].finish_reason for c in stream if c.choices]
    assert finishes[-1] in ("length", "stop")
    assert len(ray_server.replica_processes()) == REPLICAS


def test_same_app_same_errors_same_page(ray_server: RayServer):
    client = ray_server.client(max_retries=0)
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    assert e.value.body["code"] == "model_not_found"  # type: ignore[index]
    page = httpx.get(f"{ray_server.url}/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert httpx.get(f"{ray_server.url}/health", timeout=30).json()["status"] == "ok"


async def _load(url: str, model: str, started: asyncio.Event) -> list[object]:
    """LOAD_STREAMS streams and LOAD_JSON whole answers at once; `started` is set when half
    the streams have their first chunk (every request is under way by then, some answering,
    some maybe still prefilling). Each result: (finish reason, whether the proxy had to send
    the request again), or the exception."""
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
    body = {"model": model, "max_tokens": MAX_TOKENS, "extra_body": {"ignore_eos": True}}

    answering: set[int] = set()

    async def stream(i: int) -> object:
        msgs = [{"role": "user", "content": f"Tell story {i}"}]
        create = client.chat.completions.with_raw_response.create
        raw = await create(messages=msgs, stream=True, **body)  # type: ignore[call-overload]
        chunks = raw.parse()  # with_raw_response: a legacy response, parsed in place
        reason = None
        async for chunk in chunks:
            answering.add(i)
            if len(answering) >= LOAD_STREAMS // 2:
                started.set()
            if chunk.choices and chunk.choices[0].finish_reason:
                reason = chunk.choices[0].finish_reason
        return (reason, raw.headers.get("x-ovchat-attempt") == "2")

    async def whole(i: int) -> object:
        msgs = [{"role": "user", "content": f"Tell tale {i}"}]
        raw = await client.chat.completions.with_raw_response.create(messages=msgs, **body)  # type: ignore[call-overload]
        answer = raw.parse()  # with_raw_response: a legacy response, parsed in place
        return (answer.choices[0].finish_reason, raw.headers.get("x-ovchat-attempt") == "2")

    tasks = [stream(i) for i in range(LOAD_STREAMS)] + [whole(i) for i in range(LOAD_JSON)]
    try:
        return await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        started.set()
        await client.close()


def test_a_replica_killed_mid_load(ray_server: RayServer):
    """SIGKILL one replica under load: its streams already answering end with an
    OpenAI-shaped error, its requests that had sent nothing yet (whole answers, streams
    still prefilling) are sent again and complete, the other replica's answers complete,
    Ray starts a new replica, and it serves."""
    model = ray_server.client().models.list().data[0].id
    before = ray_server.wait_for_replicas(set())
    victim = ray_server.replica_processes()[0]

    async def scenario() -> list[object]:
        started = asyncio.Event()
        load = asyncio.ensure_future(_load(ray_server.url, model, started))
        await started.wait()
        victim.send_signal(signal.SIGKILL)
        return await load

    results = asyncio.run(scenario())
    streams, wholes = results[:LOAD_STREAMS], results[LOAD_STREAMS:]
    failed = [r for r in streams if isinstance(r, Exception)]
    retried = [r for r in results if isinstance(r, tuple) and r[1]]
    print(f"{len(failed)} streams cut, {len(retried)} requests sent again", file=sys.stderr)
    assert failed or retried, "the kill hit nothing in flight: nothing was tested"
    assert len(failed) < LOAD_STREAMS, "the other replica's streams should complete"
    for e in failed:
        assert isinstance(e, openai.APIError), repr(e)
        assert "replica" in e.message and "/" not in e.message, e.message
    done = [r for r in streams if not isinstance(r, Exception)]
    assert all(r[0] == "length" for r in done), streams  # type: ignore[index]
    # Whole answers never fail: one on the killed replica had sent nothing, so it is sent again.
    assert [w[0] for w in wholes] == ["length"] * LOAD_JSON, wholes  # type: ignore[index]

    ray_server.wait_for_replicas(before)
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE
    assert len(ray_server.replica_processes()) == REPLICAS
    # Serving again, from both replicas: every answer completes.
    again = asyncio.run(_load(ray_server.url, model, asyncio.Event()))
    assert again == [("length", False)] * (LOAD_STREAMS + LOAD_JSON), again


def test_metrics_list_every_replica(ray_server: RayServer):
    model = ray_server.client().models.list().data[0].id
    asyncio.run(_load(ray_server.url, model, asyncio.Event()))  # enough for both replicas
    time.sleep(PUSH_SECONDS + 1)  # each replica publishes its numbers every PUSH_SECONDS
    text = httpx.get(f"{ray_server.url}/metrics", timeout=30).text
    replicas = set(re.findall(r'replica="([^"]+)"', text))
    assert len(replicas) == REPLICAS, replicas
    served = re.findall(
        r'ovchat_requests_total\{endpoint="/v1/chat/completions",replica="[^"]+",status="200"\} '
        r"(\d+)",
        text,
    )
    assert len(served) == REPLICAS, served  # both replicas answered
