"""Aggregate tokens/s and TTFT over HTTP at 1, 4 and 16 concurrent streams.

Starts `ovchat serve` on a free port in a subprocess (so the client's event loop does not
share the server's GIL), or uses `--url` of a running server. Each level runs closed-loop
clients: `c` workers, each sending streamed chat requests one after another until the
level's requests are done. Every request decodes exactly `--max-tokens` tokens (the
server's `ignore_eos` extension), on distinct prompts, so levels are comparable.

    .venv/bin/python benchmarks/http_bench.py                 # default model
    .venv/bin/python benchmarks/http_bench.py -m ./model/phi3-instruct/int4 --json out.json

Aggregate tokens/s = completion tokens of all requests / wall time of the level.
TTFT = from sending the request to its first content chunk (queueing and prefill included).
"load" is the machine's 1-minute load average after the level: on a shared machine, read
the figures with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

LEVELS = (1, 4, 16)
MAX_TOKENS = 128
REQUESTS_PER_STREAM = 3  # each worker sends this many requests at each level...
MIN_REQUESTS = 8  # ...and each level at least this many (one stream is the noisiest)
TARGET_SPEEDUP = 6.0  # the target: 16 streams ≥ 6× one stream
TOPICS = (
    "the history of bread", "how volcanoes form", "the rules of chess", "why the sea is salty",
    "how a bicycle stays upright", "the life of honey bees", "how vaccines work",
    "the invention of paper", "how airplanes fly", "the water cycle", "how batteries work",
    "the moons of Jupiter", "how compilers work", "the Roman aqueducts", "how rainbows form",
    "the migration of birds", "how glass is made", "the first computers", "how tides work",
    "the origin of tea",
)  # fmt: skip


def prompt(i: int) -> list[dict[str, str]]:
    topic = TOPICS[i % len(TOPICS)]
    return [{"role": "user", "content": f"Write a long, detailed essay (#{i}) about {topic}."}]


async def one_request(
    client: httpx.AsyncClient, url: str, i: int, max_tokens: int, model: str
) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": prompt(i),
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": i,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    ttft = None
    tokens = 0
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread()).decode()[:300]}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            for c in event.get("choices", []):
                if ttft is None and c["delta"].get("content"):
                    ttft = time.perf_counter() - t0
    return {"ttft": ttft, "tokens": tokens, "seconds": time.perf_counter() - t0}


async def run_level(url: str, streams: int, requests: int, max_tokens: int, model: str) -> dict:
    todo = iter(range(requests))
    results: list[dict[str, Any]] = []

    async def worker(client: httpx.AsyncClient) -> None:
        for i in todo:
            results.append(await one_request(client, url, 1000 * streams + i, max_tokens, model))

    limits = httpx.Limits(max_connections=streams + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(streams)))
        wall = time.perf_counter() - t0
    ttfts = sorted(r["ttft"] for r in results if r["ttft"] is not None)
    tokens = sum(r["tokens"] for r in results)
    per_stream = [r["tokens"] / r["seconds"] for r in results if r["seconds"] > 0]
    return {
        "streams": streams,
        "requests": len(results),
        "tokens": tokens,
        "wall_seconds": round(wall, 3),
        "tokens_per_second": round(tokens / wall, 1),
        "per_request_tokens_per_second": round(statistics.median(per_stream), 1),
        "ttft_p50": round(percentile(ttfts, 50), 4),
        "ttft_p90": round(percentile(ttfts, 90), 4),
        "ttft_p99": round(percentile(ttfts, 99), 4),
    }


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile (few samples: no interpolation pretending precision)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def start_server(model: str | None, max_running: int, extra: list[str]) -> tuple[Any, str]:
    exe = str(Path(sys.executable).parent / "ovchat")
    cmd = [exe, "serve", "--port", "0", "--max-running", str(max_running), *extra]
    if model:
        cmd += ["-m", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"(http://[^\s/]+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, m.group(1)


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        cpu = next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln)
    except (OSError, StopIteration):
        pass
    versions = {}
    for dist in ("ovchat", "openvino", "openvino-genai", "fastapi", "uvicorn", "httpx"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), **versions}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-m", "--model", help="exported model dir (default: the default model)")
    ap.add_argument("--url", help="use this running server instead of starting one")
    ap.add_argument("--levels", default=",".join(map(str, LEVELS)), help="e.g. 1,4,16")
    ap.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    ap.add_argument("--requests-per-stream", type=int, default=REQUESTS_PER_STREAM)
    ap.add_argument("--json", default="http_bench.json", help="where to write the results")
    ap.add_argument("-p", "--property", action="append", default=[], help="passed to serve")
    ap.add_argument("--kv-cache-gb", help="passed to serve")
    a = ap.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    proc = None
    url = a.url
    if url is None:
        extra = [x for p in a.property for x in ("-p", p)]
        if a.kv_cache_gb:
            extra += ["--kv-cache-gb", a.kv_cache_gb]
        proc, url = start_server(a.model, max(levels), extra)
    try:
        model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
        print(f"{model} at {url}; {a.max_tokens} tokens per request", file=sys.stderr)
        asyncio.run(run_level(url, 1, 1, 16, model))  # warm-up: compile, caches
        rows = []
        for c in levels:
            n = max(MIN_REQUESTS, c * a.requests_per_stream)
            row = asyncio.run(run_level(url, c, n, a.max_tokens, model))
            row["load_average"] = round(os.getloadavg()[0], 2)
            rows.append(row)
            print(f"  {c:>2} streams: {row['tokens_per_second']} tok/s", file=sys.stderr)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    base = rows[0]["tokens_per_second"] if rows and rows[0]["streams"] == 1 else None
    header = (
        f"{'streams':>7} {'requests':>8} {'tok/s':>8} {'speedup':>7} {'per-req tok/s':>13} "
        f"{'TTFT p50':>9} {'p90':>7} {'p99':>7} {'load':>5}"
    )
    print(header)
    for r in rows:
        speedup = f"{r['tokens_per_second'] / base:.1f}x" if base else "-"
        r["speedup"] = round(r["tokens_per_second"] / base, 2) if base else None
        print(
            f"{r['streams']:>7} {r['requests']:>8} {r['tokens_per_second']:>8.1f} {speedup:>7} "
            f"{r['per_request_tokens_per_second']:>13.1f} {r['ttft_p50']:>8.3f}s "
            f"{r['ttft_p90']:>6.3f}s {r['ttft_p99']:>6.3f}s {r['load_average']:>5.1f}"
        )
    result = {
        "model": model,
        "max_tokens": a.max_tokens,
        "machine": machine(),
        "levels": rows,
        "target": f"16 streams >= {TARGET_SPEEDUP}x one stream",
    }
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {a.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
