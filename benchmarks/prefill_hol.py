"""Head-of-line blocking: how long a short request (and /health) waits while a long prompt
is prefilled, for several prefill chunk sizes (`ovchat serve --prefill-chunk`).

For each chunk size an `ovchat serve` subprocess is started (the default model unless -m);
then, per round: a ~7,000-token raw prompt is sent (unique per round, so the prefix cache
cannot help), and once it is in the engine's prefill a short chat (8 tokens) is streamed;
/health is polled every 50 ms throughout. Reported: the short request's time to first token
and total, the long prompt's time to first token (its prefill), /health latency during the
prefill, and the same short request and /health on an idle server for reference.

    .venv/bin/python benchmarks/prefill_hol.py --chunks 64,128,256,512 --json out.json

Speed figures are never asserted in tests; this prints them (with the load average, as the
machine may be shared) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

LONG_TOKENS = 7000  # about the issue's prompt; SmolLM2's window is 8192
SHORT = "Question {}: what is the capital of France?"  # a new one each time: no cache hit
SHORT_DELAY = 2.0  # seconds after the long request has reached the engine: in its prefill
HEALTH_EVERY = 0.05


def corpus() -> str:
    from pydoc_data.topics import topics

    return "\n".join(topics.values())


def start(model: str | None, chunk: int | None, extra: list[str]) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "ovchat", "serve", "--port", "0", *extra]
    if model:
        cmd += ["-m", model]
    if chunk:
        cmd += ["--prefill-chunk", str(chunk)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"ready at (http://\S+?)/?(\s|$)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, m.group(1).rstrip("/")


def short_request(url: str) -> tuple[float, float]:
    """(time to first token, total) of an 8-token streamed chat."""
    messages = [{"role": "user", "content": SHORT.format(time.time_ns())}]
    body = {"messages": messages, "max_tokens": 8, "ignore_eos": True, "stream": True}
    t0 = time.perf_counter()
    first = None
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - t0
    return first or float("nan"), time.perf_counter() - t0


def health_latencies(url: str, stop: threading.Event, out: list[float]) -> None:
    # A new connection each time: a keep-alive one may be closed by the server while the
    # event loop was held (a reset that says nothing about /health).
    while not stop.is_set():
        t0 = time.perf_counter()
        httpx.get(f"{url}/health", timeout=60)
        out.append(time.perf_counter() - t0)
        time.sleep(HEALTH_EVERY)


def in_engine(url: str) -> None:
    """Wait until the engine holds a request (the long one has been planned and submitted)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=600).text
        m = re.search(r"^ovchat_engine_sequences (\S+)$", text, re.M)
        if m and float(m.group(1)) >= 1:
            return
        time.sleep(0.02)
    raise SystemExit("the long request never reached the engine")


def one_round(url: str, prompt: str) -> dict[str, Any]:
    long: dict[str, Any] = {}

    def send_long() -> None:
        body = {"prompt": prompt, "max_tokens": 1, "stream": False}
        t0 = time.perf_counter()
        r = httpx.post(f"{url}/v1/completions", json=body, timeout=600)
        long["seconds"] = time.perf_counter() - t0
        long["prompt_tokens"] = r.json()["usage"]["prompt_tokens"]

    stop, health = threading.Event(), []  # type: ignore[var-annotated]
    poller = threading.Thread(target=health_latencies, args=(url, stop, health))
    t_long = threading.Thread(target=send_long)
    t_long.start()
    poller.start()
    in_engine(url)
    time.sleep(SHORT_DELAY)
    ttft, total = short_request(url)
    t_long.join()
    stop.set()
    poller.join()
    return {
        "short_ttft": ttft,
        "short_total": total,
        "long_seconds": long["seconds"],
        "long_prompt_tokens": long["prompt_tokens"],
        "health_p50": statistics.median(health),
        "health_max": max(health),
    }


def bench_chunk(args: argparse.Namespace, chunk: int | None, text: str) -> dict[str, Any]:
    proc, url = start(args.model, chunk, args.serve_args)
    try:
        short_request(url)  # warm-up
        idle = [short_request(url) for _ in range(3)]
        stop, idle_health = threading.Event(), []  # type: ignore[var-annotated]
        poller = threading.Thread(target=health_latencies, args=(url, stop, idle_health))
        poller.start()
        time.sleep(1)
        stop.set()
        poller.join()
        chars = LONG_TOKENS * 4  # ~4 characters per token of English for SmolLM2
        rounds = []
        for i in range(args.rounds):
            prompt = f"[{time.time_ns()} round {i}] " + text[i * 997 : i * 997 + chars]
            rounds.append(one_round(url, prompt))
            print(f"  chunk={chunk} round {i}: {rounds[-1]}", file=sys.stderr, flush=True)
    finally:
        proc.terminate()
        proc.wait(60)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    return {
        "prefill_chunk": chunk,
        "idle_short_ttft": statistics.median(t for t, _ in idle),
        "idle_short_total": statistics.median(t for _, t in idle),
        "idle_health_p50": statistics.median(idle_health),
        "short_ttft": med("short_ttft"),
        "short_total": med("short_total"),
        "long_seconds": med("long_seconds"),
        "long_prompt_tokens": rounds[0]["long_prompt_tokens"],
        "health_p50": med("health_p50"),
        "health_max": max(r["health_max"] for r in rounds),
        "rounds": rounds,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model", help="export dir (default: the default model)")
    p.add_argument("--chunks", default="64,128,256,512",
                   help="prefill chunk sizes; 'default': the server's own")  # fmt: skip
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("serve_args", nargs="*", help="more arguments for ovchat serve (after --)")
    args = p.parse_args()
    chunks = [None if c == "default" else int(c) for c in args.chunks.split(",")]
    text = corpus()
    load_before = os.getloadavg()
    results = [bench_chunk(args, c, text) for c in chunks]
    load_after = os.getloadavg()
    py = sys.version.split()[0]
    print(f"load average {load_before[0]:.1f} → {load_after[0]:.1f}; python {py}")
    head = (
        "| prefill chunk | long prompt: prefill (s) | short: TTFT (s) | short: total (s) "
        "| /health p50 (s) | /health max (s) | idle: short TTFT / total, /health (s) |"
    )
    print(head)
    print("|" + "---:|" * 7)
    for r in results:
        print(
            f"| {r['prefill_chunk'] or 'default'} | {r['long_seconds']:.2f} "
            f"| {r['short_ttft']:.2f} | {r['short_total']:.2f} | {r['health_p50']:.3f} "
            f"| {r['health_max']:.2f} | {r['idle_short_ttft']:.2f} / {r['idle_short_total']:.2f}, "
            f"{r['idle_health_p50']:.3f} |"
        )
    if args.json:
        meta = {"load_before": load_before, "load_after": load_after, "python": sys.version}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
