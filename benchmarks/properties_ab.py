"""OpenVINO properties A/B for one export on this CPU: decode speed and greedy agreement of
DYNAMIC_QUANTIZATION_GROUP_SIZE, KV_CACHE_PRECISION and INFERENCE_PRECISION_HINT settings,
each added to the properties ovchat serves with (engine/runtime.py).

The property sets alternate within each round (set A, B, C, ... then again), so load drift
hits every set alike; each run is evals/speed.py's decode_speed (one warm-up, then a bounded
decode, median of its runs); the report gives the median, min and max over the rounds.
Fidelity: the greedy tokens of a fixed prompt (the batching backend, which reports token ids)
compared with those of the served defaults (the share of positions that agree; 1.0 = the
same answer); `ovchat eval` is the full measure.

    .venv/bin/python benchmarks/properties_ab.py -m smollm2 --rounds 3
    .venv/bin/python benchmarks/properties_ab.py -m smollm2:int8 --sets dq0,dq32,dq64

Nothing in ovchat is tuned from a run on a loaded machine: defaults per CPU class change only
from quiet runs of this script on that class.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

SETS: dict[str, dict[str, str]] = {
    "served": {},
    "dq0": {"DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"},
    "dq32": {"DYNAMIC_QUANTIZATION_GROUP_SIZE": "32"},
    "dq64": {"DYNAMIC_QUANTIZATION_GROUP_SIZE": "64"},
    "dq128": {"DYNAMIC_QUANTIZATION_GROUP_SIZE": "128"},
    "kv_u8": {"KV_CACHE_PRECISION": "u8"},
    "kv_f16": {"KV_CACHE_PRECISION": "f16"},
    "f32": {"INFERENCE_PRECISION_HINT": "f32"},
    "bf16": {"INFERENCE_PRECISION_HINT": "bf16"},
}
PROMPT = "Explain in a few sentences why the sky is blue."
ANSWER_TOKENS = 48


def greedy_tokens(model_dir: Any, props: dict[str, str]) -> list[int]:
    from ovchat.engine import Engine
    from ovchat.options import GenerationOptions

    opts = GenerationOptions(max_new_tokens=ANSWER_TOKENS, temperature=0, logprobs=True)
    engine = Engine(model_dir, properties=props, backend="batching")  # logprobs: batching
    try:
        c = engine.generate(PROMPT, opts)
    finally:
        engine.close()
    return [int(t.id) for t in c.logprobs]


def main() -> None:
    from ovchat.bench.machine import versions
    from ovchat.evals.speed import cpu_info, decode_speed
    from ovchat.library import resolve

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", default=None, help="library name or export dir")
    ap.add_argument("--sets", default="served,dq0,dq32,dq64,kv_u8,kv_f16,f32",
                    help=f"comma-separated, of {', '.join(SETS)}")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=32)
    a = ap.parse_args()
    path = resolve(a.model)
    names = [s.strip() for s in a.sets.split(",") if s.strip()]
    speeds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(a.rounds):
        for n in names:  # the sets alternate within each round
            s = decode_speed(path, new_tokens=a.new_tokens, properties=SETS[n])
            speeds[n].append(s["tokens_per_second"])
            print(f"round {r + 1} {n}: {s['tokens_per_second']:.1f} tok/s", flush=True)
    base = greedy_tokens(path, SETS["served"])
    rows = []
    for n in names:
        toks = greedy_tokens(path, SETS[n])
        same = sum(x == y for x, y in zip(base, toks, strict=False)) / max(1, len(base))
        v = speeds[n]
        rows.append({"set": n, "properties": SETS[n], "median_tok_s": statistics.median(v),
                     "min": min(v), "max": max(v), "values": v,
                     "greedy_agreement_with_served": round(same, 3)})  # fmt: skip
    print(json.dumps({"model": str(path), "cpu": cpu_info(), "versions": versions(),
                      "date": time.strftime("%Y-%m-%d %H:%M"), "rounds": a.rounds,
                      "rows": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
