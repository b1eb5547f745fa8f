"""Decode speed of an export on the machine it runs on, and the CPU class it was measured on.

Used by `ovchat export --recipe auto` to keep the fastest of the faithful candidates: the
same Engine and OpenVINO properties `ovchat generate` and the server load it with (ovchat's
defaults plus the recipe's), a fixed prompt, greedy, EOS ignored, a short bounded decode
repeated; the median tokens/s counts. One warm-up run first (the first generate of a loaded
pipeline pays one-time costs).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..bench.machine import cpu_flags, cpu_model

# The ISA flags that decide which OpenVINO CPU kernels run (int8/int4 matmuls, bf16).
ISA_FLAGS = ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile",
             "amx_int8", "amx_bf16")  # fmt: skip
SPEED_NEW_TOKENS = 32  # decode tokens per run: short, bounded
SPEED_RUNS = 3  # runs; the median counts
SPEED_PROMPT = "Write a few sentences about the sea, the wind and a small boat."


def cpu_class(flags: Iterable[str]) -> str:
    """The class of CPU the kernels see: amx, avx512_vnni, avx512, avx2 or other."""
    f = set(flags)
    if {"amx_tile", "amx_int8"} & f:
        return "amx"
    if "avx512_vnni" in f:
        return "avx512_vnni"
    if "avx512f" in f:
        return "avx512"
    return "avx2" if "avx2" in f else "other"


def cpu_info(flags: Iterable[str] | None = None) -> dict[str, Any]:
    """The CPU a measurement ran on: model name, the ISA flags that matter, its class."""
    have = set(cpu_flags() if flags is None else flags)
    return {
        "model": cpu_model(),
        "flags": [f for f in ISA_FLAGS if f in have],
        "class": cpu_class(have),
    }


def decode_speed(
    model_dir: str | Path,
    *,
    new_tokens: int = SPEED_NEW_TOKENS,
    runs: int = SPEED_RUNS,
    properties: Mapping[str, Any] | None = None,
    device: str = "CPU",
) -> dict[str, Any]:
    """Decode tokens/s of the export at `model_dir` as served: median, min, max of `runs`
    runs of `new_tokens` tokens after one warm-up; `properties` are added to the served
    ones (the caller's win, as in Engine)."""
    from ..engine import Engine
    from ..options import GenerationOptions

    t0 = time.perf_counter()
    options = GenerationOptions(
        max_new_tokens=new_tokens, temperature=0, repetition_penalty=1.0, ignore_eos=True
    )
    engine = Engine(model_dir, device, properties=properties)
    try:
        engine.generate(SPEED_PROMPT, options)  # warm-up
        values = []
        for _ in range(max(1, runs)):
            c = engine.generate(SPEED_PROMPT, options)
            if c.tokens_per_second:
                values.append(float(c.tokens_per_second))
    finally:
        engine.close()
    if not values:
        values = [0.0]
    return {
        "tokens_per_second": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "values": [round(v, 2) for v in values],
        "new_tokens": new_tokens,
        "runs": len(values),
        "seconds": round(time.perf_counter() - t0, 1),
    }
