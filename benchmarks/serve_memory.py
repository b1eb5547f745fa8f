"""How the server's memory grows with the KV-cache pool (--kv-cache-gb) and the context it
has seen: RSS of an `ovchat serve` subprocess after it is ready, then after each of N
distinct long prompts (prefix caching keeps their KV blocks in the pool until it is full).

    .venv/bin/python benchmarks/serve_memory.py --pools 0.5,2 --prompts 16 --tokens 3000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def metric(url: str, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", httpx.get(f"{url}/metrics").text, re.M)
    return float(m.group(1)) if m else float("nan")


def run(model: str | None, pool: float, prompts: int, tokens: int) -> dict[str, Any]:
    from pydoc_data.topics import topics

    text = "\n".join(topics.values())
    cmd = [sys.executable, "-m", "ovchat", "serve", "--port", "0", "--kv-cache-gb", str(pool)]
    if model:
        cmd += ["-m", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    m = re.search(r"ready at (http://\S+?)/?(\s|$)", proc.stdout.readline())
    assert m, "server did not start"
    url = m.group(1).rstrip("/")
    try:
        rows = [{"prompts": 0, "rss_mb": rss_mb(proc.pid), "kv_usage": 0.0}]
        for i in range(prompts):
            start = (i * 7919) % (len(text) - tokens * 5)
            prompt = f"[{time.time_ns()}] " + text[start : start + tokens * 4]
            r = httpx.post(f"{url}/v1/completions", json={"prompt": prompt, "max_tokens": 1},
                           timeout=600)  # fmt: skip
            r.raise_for_status()
            rows.append({
                "prompts": i + 1,
                "rss_mb": rss_mb(proc.pid),
                "kv_usage": metric(url, "ovchat_kv_cache_usage_ratio"),
            })  # fmt: skip
            print(f"  pool {pool} GB: {rows[-1]}", file=sys.stderr, flush=True)
        return {
            "kv_cache_gb": pool,
            "pool_bytes": metric(url, "ovchat_kv_cache_bytes"),
            "prompt_tokens": r.json()["usage"]["prompt_tokens"],
            "rows": rows,
        }
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model")
    p.add_argument("--pools", default="0.5,2")
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--tokens", type=int, default=3000)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    load = os.getloadavg()[0]
    results = [run(a.model, float(x), a.prompts, a.tokens) for x in a.pools.split(",")]
    print(f"load average {load:.1f} → {os.getloadavg()[0]:.1f}")
    steps = " | ".join(f"after {r['prompts']}" for r in results[0]["rows"][1::4])
    print(f"| --kv-cache-gb | pool (MB) | RSS ready (MB) | {steps} | last |")
    for res in results:
        rows = res["rows"]
        cells = " | ".join(f"{r['rss_mb']:.0f} ({r['kv_usage']:.0%})" for r in rows[1::4])
        print(f"| {res['kv_cache_gb']:g} | {res['pool_bytes'] / 2**20:.0f} | "
              f"{rows[0]['rss_mb']:.0f} | {cells} | {rows[-1]['rss_mb']:.0f} |")  # fmt: skip
    if a.json:
        a.json.write_text(json.dumps({"load": load, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
