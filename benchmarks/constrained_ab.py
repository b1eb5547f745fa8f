"""A/B of constrained decoding: the same request with and without a JSON-schema constraint.

Round-robin in one process (load drift on a shared machine hits both alike), on both
engine backends. Each round: the same chat prompt, exactly NEW_TOKENS new tokens, sampled.
The constrained variants' schema (an array of exactly ITEMS short strings) keeps the grammar
busy for all NEW_TOKENS tokens: "compact" is what ovchat sends (its own compact grammar,
jsongrammar.py), "genai" the same schema through genai's own JSON-schema grammar; the free
variant decodes as many tokens with `ignore_eos`. The first round is a warm-up (and compiles
the grammars once). Prints decode tok/s medians and the ratios to free, and the process's
CPU time per generated token (all of genai's threads): on a shared machine the wall clock
swings with other processes' load, the CPU a request burns much less.

    .venv/bin/python benchmarks/constrained_ab.py                 # default model, 6 rounds
    .venv/bin/python benchmarks/constrained_ab.py -m DIR --rounds 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

from ovchat import Engine, GenerationOptions
from ovchat.library import resolve
from ovchat.versions import versions

NEW_TOKENS = 150
ITEMS = 80
SCHEMA = {
    "type": "array",
    "items": {"type": "string", "maxLength": 12},
    "minItems": ITEMS,
    "maxItems": ITEMS,
}
PROMPT = [{"role": "user", "content": "List many English words as a JSON array of strings."}]


VARIANTS = ("free", "compact", "genai")


def run(engine: Engine, variant: str, seed: int) -> Any:
    import openvino_genai as ov_genai

    opts: dict[str, Any] = dict(max_new_tokens=NEW_TOKENS, temperature=0.7, seed=seed)
    if variant == "free":
        opts["ignore_eos"] = True
    else:
        opts["json_schema"] = SCHEMA
    plan = engine.plan(PROMPT, GenerationOptions(**opts))
    if variant == "genai":  # the same schema through genai's own converter
        cfg = ov_genai.StructuredOutputConfig(json_schema=json.dumps(SCHEMA))
        plan.config.structured_output_config = cfg
    t0 = time.process_time()
    done = engine.generate(plan)
    return done, (time.process_time() - t0) / done.generated_tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-m", "--model", help="exported model dir (default: the default model)")
    p.add_argument("--rounds", type=int, default=6, help="rounds, the first one a warm-up")
    p.add_argument("--json", help="write the figures to this file")
    a = p.parse_args()
    model = resolve(a.model)
    out: dict[str, Any] = {"model": str(model.name), "new_tokens": NEW_TOKENS, "rounds": []}
    out["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    out["loadavg_start"] = os.getloadavg()
    results = {}
    for backend in ("pipeline", "batching"):
        engine = Engine(model, backend=backend)
        speed: dict[str, list[float]] = {v: [] for v in VARIANTS}
        cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
        tokens: dict[str, list[int]] = {v: [] for v in VARIANTS}
        try:
            for r in range(a.rounds):
                for name in VARIANTS:
                    c, cpu_per_token = run(engine, name, seed=r)
                    if r and c.tokens_per_second:
                        speed[name].append(c.tokens_per_second)
                        cpu[name].append(cpu_per_token * 1000)
                        tokens[name].append(c.generated_tokens)
        finally:
            engine.close()
        med = {k: statistics.median(v) for k, v in speed.items()}
        cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
        results[backend] = {
            "tok_s": med,
            "tok_s_ratio_to_free": {k: med[k] / med["free"] for k in VARIANTS},
            "cpu_ms_per_token": cpu_med,
            "cpu_ratio_to_free": {k: cpu_med["free"] / cpu_med[k] for k in VARIANTS},
            "all_tok_s": speed,
            "all_cpu_ms_per_token": cpu,
            "tokens": tokens,
        }
        print(f"{backend}: decode tok/s (ratio to free) | CPU ms per token (free's / this)")
        for k in VARIANTS:
            print(
                f"  {k:8} {med[k]:6.1f} ({med[k] / med['free']:.3f}) | "
                f"{cpu_med[k]:6.1f} ({cpu_med['free'] / cpu_med[k]:.3f})",
                flush=True,
            )
    out["backends"] = results
    out["loadavg_end"] = os.getloadavg()
    out["versions"] = versions()
    out["time"] = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"load average {out['loadavg_start'][0]:.1f} → {out['loadavg_end'][0]:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
