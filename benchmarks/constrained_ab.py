"""A/B of constrained decoding: the same request with and without a JSON-schema constraint.

Round-robin in one process (load drift on a shared machine hits both alike), on both
engine backends. Each round: the same chat prompt, exactly NEW_TOKENS new tokens, sampled.
The constrained variant's schema (an array of exactly ITEMS short strings) keeps the grammar
busy for all NEW_TOKENS tokens; the free variant decodes as many with `ignore_eos`. The first
round is a warm-up (and compiles the grammar once). Prints decode tok/s medians and the ratio.

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


def run(engine: Engine, constrained: bool, seed: int) -> Any:
    opts: dict[str, Any] = dict(max_new_tokens=NEW_TOKENS, temperature=0.7, seed=seed)
    if constrained:
        opts["json_schema"] = SCHEMA
    else:
        opts["ignore_eos"] = True
    return engine.generate(PROMPT, GenerationOptions(**opts))


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
        engine = Engine(model, backend=backend)  # type: ignore[arg-type]
        speed: dict[str, list[float]] = {"free": [], "json_schema": []}
        tokens: dict[str, list[int]] = {"free": [], "json_schema": []}
        try:
            for r in range(a.rounds):
                for name in ("free", "json_schema"):
                    c = run(engine, name == "json_schema", seed=r)
                    if r and c.tokens_per_second:
                        speed[name].append(c.tokens_per_second)
                        tokens[name].append(c.generated_tokens)
        finally:
            engine.close()
        free, constrained = (statistics.median(speed[k]) for k in ("free", "json_schema"))
        results[backend] = {
            "free_tok_s": free,
            "constrained_tok_s": constrained,
            "ratio": constrained / free,
            "free_all": speed["free"],
            "constrained_all": speed["json_schema"],
            "tokens": tokens,
        }
        print(
            f"{backend:9} free {free:6.1f} tok/s   json_schema {constrained:6.1f} tok/s   "
            f"constrained/free {constrained / free:.3f}   (tokens {tokens['json_schema']})",
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
