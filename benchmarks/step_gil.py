"""Does openvino-genai's ContinuousBatchingPipeline.step() release the GIL?

A Python thread spins a counter and records the longest gap between two of its ticks while
the batching engine prefills a long prompt in steps of `--prefill-chunk` tokens. If step()
released the GIL the longest gap would stay near the switch interval (5 ms); if it holds
it, the longest gap is about one step.

    .venv/bin/python benchmarks/step_gil.py [-m MODEL] [--prefill-chunk 2048] [--tokens 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

from ovchat.engine import Engine
from ovchat.library import ensure_default_model
from ovchat.options import GenerationOptions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", default=None)
    ap.add_argument("--prefill-chunk", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=4000)
    args = ap.parse_args()
    from pydoc_data.topics import topics

    path = args.model or ensure_default_model()
    eng = Engine(path, backend="batching", prefill_chunk=args.prefill_chunk)
    ids = eng.encode("\n".join(topics.values()))[: args.tokens]
    text = eng.tokenizer.decode(ids)
    eng.generate("Hello", GenerationOptions(max_new_tokens=1))  # warm-up
    stop = threading.Event()
    stats = {"ticks": 0, "max_gap": 0.0}

    def spin() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            now = time.perf_counter()
            stats["ticks"] += 1
            stats["max_gap"] = max(stats["max_gap"], now - last)
            last = now

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.5)
    idle_gap, stats["max_gap"] = stats["max_gap"], 0.0
    t0 = time.perf_counter()
    out = eng.generate(text, GenerationOptions(max_new_tokens=1))
    prefill = time.perf_counter() - t0
    stop.set()
    t.join()
    steps = -(-out.prompt_tokens // args.prefill_chunk)
    print(
        json.dumps(
            {
                "prompt_tokens": out.prompt_tokens,
                "prefill_chunk": args.prefill_chunk,
                "steps": steps,
                "prefill_seconds": round(prefill, 3),
                "seconds_per_step": round(prefill / steps, 3),
                "longest_gap_idle": round(idle_gap, 4),
                "longest_gap_during_prefill": round(stats["max_gap"], 4),
                "loadavg": os.getloadavg()[0],
            }
        )
    )
    eng.close()


if __name__ == "__main__":
    main()
