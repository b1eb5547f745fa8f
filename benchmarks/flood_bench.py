"""Big bodies against a small one: /health latency and a short chat's while clients send
1 MiB prompts in a loop (each is refused: far beyond the window), against the same on an
idle server.

    .venv/bin/python benchmarks/flood_bench.py --seconds 20
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time

import httpx

SHORT = {"messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 8, "ignore_eos": True}


def measure(url: str, seconds: float) -> dict[str, float]:
    health, chat = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        httpx.get(f"{url}/health", timeout=60)
        health.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        httpx.post(f"{url}/v1/chat/completions", json=SHORT, timeout=60)
        chat.append(time.perf_counter() - t0)
    return {
        "health_p50": statistics.median(health),
        "health_max": max(health),
        "chat_p50": statistics.median(chat),
        "chat_max": max(chat),
        "n": len(chat),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--clients", type=int, default=2)
    a = p.parse_args()
    cmd = [sys.executable, "-m", "ovchat", "serve", "--port", "0"] + (
        ["-m", a.model] if a.model else []
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    m = re.search(r"ready at (http://\S+?)/?(\s|$)", proc.stdout.readline())
    assert m, "server did not start"
    url = m.group(1).rstrip("/")
    from pydoc_data.topics import topics

    big = ("\n".join(topics.values()) * 4)[: (1 << 20) - 200]
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        with httpx.Client(timeout=60) as c:
            while not stop.is_set():
                c.post(f"{url}/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": big}]})  # fmt: skip
                sent[0] += 1

    try:
        load = os.getloadavg()[0]
        idle = measure(url, a.seconds)
        threads = [threading.Thread(target=flood) for _ in range(a.clients)]
        for t in threads:
            t.start()
        busy = measure(url, a.seconds)
        stop.set()
        for t in threads:
            t.join()
    finally:
        proc.terminate()
        proc.wait(60)
    print(f"load average {load:.1f} → {os.getloadavg()[0]:.1f}; {sent[0]} big bodies sent")
    for name, r in (("idle", idle), (f"{a.clients} clients sending 1 MiB", busy)):
        print(
            f"{name}: /health p50 {r['health_p50']:.3f} s (max {r['health_max']:.2f}), "
            f"short chat p50 {r['chat_p50']:.3f} s (max {r['chat_max']:.2f}), n={r['n']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
