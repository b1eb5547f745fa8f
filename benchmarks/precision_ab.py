"""A/B of OpenVINO properties on ovchat's engine, in one process, round-robin.

Round-robin in one process, so that load drift on a shared machine hits every variant
alike. Each round: one greedy request with a ~480-token prompt and exactly 128 new tokens
per variant; the first round is a warm-up. Prints decode tok/s and TTFT medians.

    .venv/bin/python benchmarks/precision_ab.py            # bf16 (default) vs f32
    .venv/bin/python benchmarks/precision_ab.py -m DIR --rounds 8
"""

from __future__ import annotations

import argparse
import statistics

from ovchat import Engine, GenerationOptions
from ovchat.library import resolve

VARIANTS = {
    "default (bf16)": {},
    "INFERENCE_PRECISION_HINT=f32": {"INFERENCE_PRECISION_HINT": "f32"},
}
PROMPT = "The history of the city " * 120
NEW_TOKENS = 128


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-m", "--model", help="exported model dir (default: the default model)")
    p.add_argument("--rounds", type=int, default=5, help="rounds, the first one a warm-up")
    a = p.parse_args()
    model = resolve(a.model)
    engines = {name: Engine(model, properties=props) for name, props in VARIANTS.items()}
    options = GenerationOptions(max_new_tokens=NEW_TOKENS, temperature=0, ignore_eos=True)
    decode: dict[str, list[float]] = {k: [] for k in engines}
    ttft: dict[str, list[float]] = {k: [] for k in engines}
    for r in range(a.rounds):
        for name, engine in engines.items():
            c = engine.generate(PROMPT, options)
            if r and c.tokens_per_second and c.ttft is not None:
                decode[name].append(c.tokens_per_second)
                ttft[name].append(c.ttft * 1000)
    n_prompt = len(next(iter(engines.values())).encode(PROMPT))
    print(f"{model.name}: {n_prompt}-token prompt, {NEW_TOKENS} new tokens, {a.rounds - 1} rounds")
    for name in engines:
        print(
            f"{name:30} decode {statistics.median(decode[name]):6.1f} tok/s "
            f"({min(decode[name]):.1f}-{max(decode[name]):.1f})   "
            f"TTFT {statistics.median(ttft[name]):6.0f} ms"
        )


if __name__ == "__main__":
    main()
