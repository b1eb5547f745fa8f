"""`ovchat serve --ray` measured: Ray's overhead per request, and a replica killed under load.

overhead: http_bench.py's levels (1, 4, 16 closed-loop streams, every request exactly
  --max-tokens tokens) against plain `ovchat serve`, then `--ray --replicas 1`, then
  `--ray --replicas 2`, one after another in one run; plus the round trip of a 1-token
  request, one at a time (ROUND_TRIPS of them): what the proxy and the router add to each
  request. On a 2-core machine two replicas share the same two cores: they cannot be
  faster than one, only show what a second replica costs.
crash: `--ray --replicas 2` under CRASH_STREAMS closed-loop streams for --seconds; at
  --kill-at one replica process gets SIGKILL. Reports the requests cut (and what they got),
  the others, tokens/s per WINDOW seconds before and after, when Ray had two replicas
  again, and when throughput recovered (back to RECOVERED of the rate before the kill).

    .venv/bin/python benchmarks/ray_bench.py overhead --json ray_overhead.json
    .venv/bin/python benchmarks/ray_bench.py crash --json ray_crash.json
autoscale: `--ray --autoscale 1:2`, idle, then --streams closed-loop streams for --seconds,
  then idle again: the replicas running (processes, and in /metrics) every second.

    .venv/bin/python benchmarks/ray_bench.py autoscale --streams 16 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
# The HTTP client and the levels of the plain benchmark:
from http_bench import (
    LEVELS,
    MIN_REQUESTS,
    REQUESTS_PER_STREAM,
    machine,
    one_request,
    run_level,
    start_server,
)

ROUND_TRIPS = 30
CRASH_STREAMS = 8
CRASH_SECONDS = 90.0
KILL_AT = 20.0
WINDOW = 5.0
RECOVERED = 0.8
REPLICA_TITLE = "ServeReplica:ovchat:ovchat"
DOWNSCALE_DELAY_S = 60.0  # ovchat.serve.ray_app's


def stop(proc: Any) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(120)


async def round_trips(url: str, model: str, n: int = ROUND_TRIPS) -> dict[str, Any]:
    """Median and p90 seconds, one request at a time: GET /health (no model: HTTP, the proxy
    and the router alone) and a whole 1-token chat request (non-streamed)."""
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=120) as client:
        for name, call in (
            ("health", lambda: client.get(f"{url}/health")),
            ("one_token", lambda: client.post(f"{url}/v1/chat/completions", json=body)),
        ):
            times = []
            for _ in range(n + 3):
                t0 = time.perf_counter()
                r = await call()
                r.raise_for_status()
                times.append(time.perf_counter() - t0)
            times = sorted(times[3:])  # the first few warm up connections and caches
            out[name] = {
                "median": round(statistics.median(times), 4),
                "p90": round(times[int(0.9 * n)], 4),
            }
    return out


def measure(name: str, extra: list[str], a: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc, url = start_server(a.model, max(LEVELS), extra)
    started = time.perf_counter() - t0
    try:
        model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
        asyncio.run(run_level(url, 1, 1, 16, model))  # warm-up
        rt = asyncio.run(round_trips(url, model))
        rows = []
        for c in LEVELS:
            n = max(MIN_REQUESTS, c * REQUESTS_PER_STREAM)
            row = asyncio.run(run_level(url, c, n, a.max_tokens, model))
            row["load_average"] = round(os.getloadavg()[0], 2)
            rows.append(row)
            print(f"  {name} {c:>2} streams: {row['tokens_per_second']} tok/s", file=sys.stderr)
    finally:
        stop(proc)
    return {"name": name, "start_seconds": round(started, 1), "round_trip": rt, "levels": rows}


def overhead(a: argparse.Namespace) -> dict[str, Any]:
    targets = [
        ("plain", []),
        ("ray-1", ["--ray", "--replicas", "1"]),
        ("ray-2", ["--ray", "--replicas", "2"]),
    ]
    runs = [measure(name, extra, a) for name, extra in targets]
    base = runs[0]
    print(f"{'server':>7} {'start':>6} {'/health':>8} {'1-token':>8} " + " ".join(
        f"{f'{c} str tok/s':>12} {'TTFT p50':>9}" for c in LEVELS
    ))  # fmt: skip
    for r in runs:
        cells = " ".join(
            f"{x['tokens_per_second']:>12.1f} {x['ttft_p50']:>8.3f}s" for x in r["levels"]
        )
        health, one = r["round_trip"]["health"]["median"], r["round_trip"]["one_token"]["median"]
        print(f"{r['name']:>7} {r['start_seconds']:>5.0f}s {health:>7.4f}s {one:>7.4f}s {cells}")
        r["overhead_per_request_seconds"] = {
            k: round(r["round_trip"][k]["median"] - base["round_trip"][k]["median"], 4)
            for k in ("health", "one_token")
        }
        r["throughput_ratio"] = [
            round(x["tokens_per_second"] / b["tokens_per_second"], 3)
            for x, b in zip(r["levels"], base["levels"], strict=True)
        ]
    return {"runs": runs}


def replica_pids(server_pid: int) -> list[int]:
    out = []
    for p in psutil.Process(server_pid).children(recursive=True):
        try:
            if REPLICA_TITLE in " ".join(p.cmdline()):
                out.append(p.pid)
        except psutil.Error:
            pass
    return out


async def crash_load(url: str, model: str, a: argparse.Namespace, proc: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    done: list[dict[str, Any]] = []
    events: dict[str, Any] = {}
    counter = iter(range(10**6))

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() - t0 < a.seconds:
            i = next(counter)
            start = time.perf_counter() - t0
            try:
                r = await one_request(client, url, i, a.max_tokens, model)
                ok = r["tokens"] == a.max_tokens
                what = "ok" if ok else "cut (error event)"
            except Exception as e:  # the client's view of a failure, kept as its type
                r, ok, what = {"tokens": 0}, False, f"{type(e).__name__}: {str(e)[:120]}"
            end = time.perf_counter() - t0
            done.append({"start": start, "end": end, "ok": ok, "what": what, **r})

    async def killer() -> None:
        await asyncio.sleep(a.kill_at)
        victim = replica_pids(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        events["killed_at"] = round(time.perf_counter() - t0, 2)
        events["victim_pid"] = victim
        while time.perf_counter() - t0 < a.seconds:
            await asyncio.sleep(0.5)
            pids = replica_pids(proc.pid)
            if len(pids) == 2 and victim not in pids:
                # Running again: the new replica answers (its model loaded) once in /metrics.
                text = (await asyncio.to_thread(httpx.get, f"{url}/metrics", timeout=30)).text
                if len(set(re.findall(r'replica="([^"]+)"', text))) >= 2:
                    events["two_replicas_again_at"] = round(time.perf_counter() - t0, 2)
                    return

    limits = httpx.Limits(max_connections=a.streams + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await asyncio.gather(killer(), *(worker(client) for _ in range(a.streams)))
    return {"requests": done, **events}


def crash(a: argparse.Namespace) -> dict[str, Any]:
    proc, url = start_server(a.model, max(LEVELS), ["--ray", "--replicas", "2"])
    try:
        model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
        asyncio.run(run_level(url, 2, 4, 16, model))  # warm-up, both replicas
        r = asyncio.run(crash_load(url, model, a, proc))
    finally:
        stop(proc)
    reqs, killed = r.pop("requests"), r["killed_at"]
    windows = []
    for k in range(int(a.seconds // WINDOW)):
        lo, hi = k * WINDOW, (k + 1) * WINDOW
        tokens = sum(q["tokens"] for q in reqs if q["ok"] and lo <= q["end"] < hi)
        windows.append({"from": lo, "tokens_per_second": round(tokens / WINDOW, 1)})
    before = [w["tokens_per_second"] for w in windows if w["from"] + WINDOW <= killed][1:]
    rate = statistics.mean(before) if before else float("nan")
    after = [w for w in windows if w["from"] > killed]
    recovered = next((w["from"] for w in after if w["tokens_per_second"] >= RECOVERED * rate), None)
    in_flight = [q for q in reqs if q["start"] <= killed < q["end"]]
    cut = [q for q in in_flight if not q["ok"]]
    result = {
        **r,
        "streams": a.streams,
        "requests": len(reqs),
        "failed": sum(not q["ok"] for q in reqs),
        "in_flight_at_kill": len(in_flight),
        "cut_at_kill": len(cut),
        "what_cut_requests_got": sorted({q["what"] for q in cut}),
        "failed_not_in_flight": sum(not q["ok"] for q in reqs if q not in in_flight),
        "tokens_per_second_before": round(rate, 1),
        "throughput_recovered_at": recovered,
        "windows": windows,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "windows"}, indent=1))
    print(" ".join(f"{w['from']:.0f}s:{w['tokens_per_second']:.0f}" for w in windows))
    return result


def autoscale(a: argparse.Namespace) -> dict[str, Any]:
    proc, url = start_server(a.model, max(LEVELS), ["--ray", "--autoscale", "1:2"])
    timeline: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    async def watch(until: float) -> None:
        while time.perf_counter() - t0 < until:
            text = (await asyncio.to_thread(httpx.get, f"{url}/metrics", timeout=30)).text
            loaded = len(re.findall(r"ovchat_models_loaded\{replica=\"[^\"]+\"\} 1\.0", text))
            t = round(time.perf_counter() - t0, 1)
            timeline.append({"t": t, "processes": len(replica_pids(proc.pid)), "loaded": loaded})
            await asyncio.sleep(1)

    async def load() -> dict[str, Any]:
        await asyncio.sleep(a.kill_at)  # idle first
        n = a.streams * REQUESTS_PER_STREAM * 100  # more than --seconds can finish: cut below
        task = asyncio.ensure_future(run_level(url, a.streams, n, a.max_tokens, model))
        await asyncio.sleep(a.seconds)
        task.cancel()
        return {"load_from": a.kill_at, "load_until": a.kill_at + a.seconds}

    try:
        model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
        total = a.kill_at + a.seconds + DOWNSCALE_DELAY_S + 20  # and back to one

        async def both() -> dict[str, Any]:
            got = await asyncio.gather(watch(total), load(), return_exceptions=True)
            return got[1] if isinstance(got[1], dict) else {}

        span = asyncio.run(both())
    finally:
        stop(proc)
    first_two = next((p["t"] for p in timeline if p["loaded"] >= 2), None)
    print(" ".join(f"{p['t']:.0f}s:{p['processes']}/{p['loaded']}" for p in timeline))
    end = span.get("load_until") or 0
    back_to_one = next((p["t"] for p in timeline if p["t"] > end and p["processes"] == 1), None)
    print(f"load {span.get('load_from')}-{end} s; two replicas serving at {first_two} s; "
          f"one again at {back_to_one} s")  # fmt: skip
    return {
        "streams": a.streams,
        **span,
        "two_replicas_at": first_two,
        "one_replica_again_at": back_to_one,
        "timeline": timeline,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["overhead", "crash", "autoscale"])
    ap.add_argument("-m", "--model", help="exported model dir (default: the default model)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--streams", type=int, default=CRASH_STREAMS, help="crash: streams")
    ap.add_argument("--seconds", type=float, default=CRASH_SECONDS, help="crash: duration")
    ap.add_argument("--kill-at", type=float, default=KILL_AT,
                    help="crash: when to kill; autoscale: when the load starts")  # fmt: skip
    ap.add_argument("--json", help="where to write the results")
    a = ap.parse_args()
    load_before = os.getloadavg()
    result = {"overhead": overhead, "crash": crash, "autoscale": autoscale}[a.what](a)
    result = {
        "what": a.what,
        "max_tokens": a.max_tokens,
        "machine": {**machine(), "ray": _version("ray")},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **result,
    }
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"written to {a.json}", file=sys.stderr)
    return 0


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
