"""Several ovchat servers compared in alternating rounds, for a machine that is not quiet.

    .venv/bin/python benchmarks/server_alternate.py --rounds 3 \
        --server "engine process=" --server "in-process=--no-engine-process"

starts every server given (NAME=ARGS: `ovchat serve` arguments; NAME@DIR=ARGS runs the
ovchat found in DIR, e.g. another checkout, through PYTHONPATH) at once, then runs each
measurement on each server in turn, round after round, so that a load that comes and goes
falls on all of them alike. Per round and server: aggregate tokens/s at each --streams
count (64-token answers), the short chat (8 tokens) alone and sent 1 s into a long
(~5,500-token) prompt's prefill (--prefill), and a lone client's TTFT while another client
keeps 16 long requests in flight (--fairness N lone requests). It prints the median over
rounds and writes every round's figures with --json. Idle servers cost next to nothing, so
they can stay up while another is measured. Speed is never asserted in tests.

The measurements are those of benchmarks/server_load.py (its functions).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from server_load import Server, corpus, fairness, free_port, short_during_long, streams

from ovchat.paths import portable


def start(spec: str, model: str | None) -> Server:
    name, _, extra = spec.partition("=")
    name, _, pythonpath = name.partition("@")
    port = free_port()
    cmd = [sys.executable, "-m", "ovchat", "serve", "--port", str(port), *extra.split()]
    cmd += ["-m", model] if model else []
    saved = os.environ.get("PYTHONPATH")
    if pythonpath:
        os.environ["PYTHONPATH"] = pythonpath
    try:
        return Server(name, cmd, f"http://127.0.0.1:{port}", "/health")
    finally:
        if pythonpath:
            os.environ.pop("PYTHONPATH")
            if saved is not None:
                os.environ["PYTHONPATH"] = saved


def one_round(server: Server, args: argparse.Namespace, text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for n in args.streams:
        r = streams(server.url, n, args.max_tokens)
        out[f"tok_s_{n}"], out[f"ttft_p99_{n}"] = r["tok_s"], r["ttft_p99"]
    if args.prefill:
        r = short_during_long(server.url, text, args.long_tokens, 1.0)
        out["short_alone"], out["short_during_long"] = r["short_alone"], r["short_during_long"]
        out["long_seconds"] = r["long_seconds"]
    if args.fairness:
        r = fairness(server.url, text, 16, args.fairness)
        out["lone_ttft_alone"] = r["lone_ttft_p99_alone"]
        out["lone_ttft_flood"] = r["lone_ttft_p99_flood"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", action="append", help="NAME=ARGS or NAME@DIR=ARGS (repeat)")
    p.add_argument("-m", "--model", help="a model name or export dir (default model)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--streams", default="1,16")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prefill", action="store_true", help="short chat during a long prefill")
    p.add_argument("--long-tokens", type=int, default=5500)
    p.add_argument("--fairness", type=int, default=0, help="lone requests per round (0: skip)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    args.streams = [int(n) for n in args.streams.split(",") if n]
    specs = args.server or ["engine process=", "in-process=--no-engine-process"]
    text = corpus()
    servers = [start(s, args.model) for s in specs]
    rounds: dict[str, list[dict[str, float]]] = {s.name: [] for s in servers}
    load_before = os.getloadavg()
    try:
        for s in servers:
            streams(s.url, 1, 4)  # warm-up
        for i in range(args.rounds):
            for s in servers:
                r = one_round(s, args, text)
                rounds[s.name].append(r)
                print(f"round {i + 1} {s.name}: {r}", file=sys.stderr, flush=True)
    finally:
        for s in servers:
            s.stop()
    load_after = os.getloadavg()
    print(f"load average {load_before[0]:.1f} → {load_after[0]:.1f}, {os.cpu_count()} CPUs")
    keys = list(next(iter(rounds.values()))[0]) if args.rounds else []
    print("| server | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, rs in rounds.items():
        cells = [f"{statistics.median(r[k] for r in rs):.2f}" for k in keys]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        meta = {"load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(),
                "argv": sys.argv[1:]}  # fmt: skip
        args.json.write_text(json.dumps(portable({"meta": meta, "rounds": rounds}), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
