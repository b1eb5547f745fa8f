"""Several models behind one `ovchat serve`: what loading on first use and LRU unloading cost.

    .venv/bin/python benchmarks/models_bench.py                       # smollm2 and smollm2:int8
    .venv/bin/python benchmarks/models_bench.py -m phi3 -m phi3:int8 --json out.json

Starts `ovchat serve -m A -m B` twice in a subprocess: with --max-loaded 2 (both stay
loaded) and --max-loaded 1 (every switch of model unloads one and loads the other). Reports
the time to ready, each model's load time (the server's own metric), the time to first
token of a request that had to load its model against one that did not, the server's
resident memory with one and with two models loaded, and the mean time of a short request
when requests alternate between the two models. Both models must be in the library (or
pullable on first use: `smollm2:int8` is prepared from the default model's GGUF once).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [{"role": "user", "content": "Name three prime numbers."}]
SWITCHES = 6  # requests alternating between the two models


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ttft(url: str, model: str, max_tokens: int = 8) -> tuple[float, float]:
    """Seconds to the first streamed token, and to the end."""
    body = {"model": model, "messages": PROMPT, "max_tokens": max_tokens, "stream": True,
            "temperature": 0}  # fmt: skip
    t0 = time.perf_counter()
    first = None
    with httpx.stream("POST", f"{url}v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - t0
    return (first or float("nan")), time.perf_counter() - t0


def load_seconds(url: str) -> dict[str, str]:
    """Each model's mean load time and how many loads it took (the server's metric)."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}metrics").text.splitlines():
        m = re.match(r'ovchat_model_load_seconds_(sum|count)\{model="([^"]+)"\} (\S+)', line)
        if m:
            (sums if m.group(1) == "sum" else counts)[m.group(2)] = float(m.group(3))
    return {k: f"{sums[k] / counts[k]:.2f} ×{counts[k]:.0f}" for k in sums if counts.get(k)}


def run(models: list[str], max_loaded: int) -> dict[str, Any]:
    exe = str(Path(sys.executable).parent / "ovchat")
    cmd = [exe, "serve", *[a for m in models for a in ("-m", m)], "--port", "0",
           "--max-loaded", str(max_loaded)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"ready at (\S+)", line)
        if not m:
            raise SystemExit(f"the server did not start: {line}")
        url, ready = m.group(1), time.perf_counter() - t0
        ids = [d["id"] for d in httpx.get(f"{url}v1/models").json()["data"]]
        a, b = ids[0], ids[1]
        warm_a = ttft(url, a)[0]  # a was loaded before ready
        rss_one = rss_mb(proc.pid)
        cold_b = ttft(url, b)[0]  # b loads on this request (and, with 1 slot, a unloads)
        warm_b = ttft(url, b)[0]
        rss_after = rss_mb(proc.pid)
        totals = []
        for i in range(SWITCHES):
            totals.append(ttft(url, (a, b)[i % 2], max_tokens=4)[1])
        return {
            "max_loaded": max_loaded,
            "ready_s": round(ready, 2),
            "load_s": load_seconds(url),
            "ttft_loaded_s": round(min(warm_a, warm_b), 3),
            "ttft_loading_s": round(cold_b, 3),
            "rss_one_mb": round(rss_one),
            "rss_after_mb": round(rss_after),
            "alternating_request_s": round(statistics.median(totals), 3),
            "models": ids,
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "-m", "--model", action="append", help="two models (default: smollm2, smollm2:int8)"
    )
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    models = a.model or ["smollm2", "smollm2:int8"]
    rows = [run(models, 2), run(models, 1)]
    load = os.getloadavg()
    print(f"{' / '.join(rows[0]['models'])}; load average {load[0]:.1f}")
    print("| max-loaded | ready (s) | load times (s) | TTFT loaded (s) | TTFT loading (s) | "
          "RSS 1 model (MB) | RSS after both (MB) | alternating request (s) |")  # fmt: skip
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        loads = ", ".join(f"{k} {v}" for k, v in r["load_s"].items())
        print(f"| {r['max_loaded']} | {r['ready_s']} | {loads} | {r['ttft_loaded_s']} | "
              f"{r['ttft_loading_s']} | {r['rss_one_mb']} | {r['rss_after_mb']} | "
              f"{r['alternating_request_s']} |")  # fmt: skip
    if a.json:
        Path(a.json).write_text(json.dumps({"load_average": load, "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
