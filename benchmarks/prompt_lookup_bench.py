"""Prompt-lookup decoding (`--prompt-lookup`) against plain decoding, through ovchat's Engine,
on prompts whose answers repeat their prompt (edit code, fix a text, summarise) and on
ordinary ones.

    python benchmarks/prompt_lookup_bench.py [-m MODEL] [--rounds 3] [--new 192] [--json OUT]

Configs, each in its own subprocess, alternated round by round (order rotated):
  plain   ovchat generate's default (SDPA attention)
  pa      paged attention, no lookup (the path lookup runs on)
  lookup  Engine(prompt_lookup=True): K=3 drafted tokens, n-grams of 3
Greedy, the model's own answers (EOS honoured), chat template. Per prompt: decode tok/s
after the first token, median (min-max) over rounds, × against plain, and whether the
answer equals pa's token for token. Load average recorded per run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CODE = '''def parse_config(path):
    """Read a key=value config file into a dict, skipping comments and blank lines."""
    result = {}
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            result[key.strip()] = value.strip()
    return result
'''
TEXT = (
    "The Python standard library contains a module called json that can encode and decode "
    "JSON data. To read a file, open it and call json.load on the file object; to write "
    "data, call json.dump with the object and an open file. The module also offers "
    "json.loads and json.dumps, which work on strings instead of files. Custom classes "
    "can be serialised by passing a default function, and decoding can be customised with "
    "object_hook."
)
PROMPTS = {
    "edit-code": "Rename the variable `result` to `config` in this function and show the "
    f"whole function:\n\n{CODE}",
    "copy-text": f"Fix any spelling mistakes in the following paragraph and repeat it in full:"
    f"\n\n{TEXT}",
    "summarise": f"Summarise this paragraph in two sentences, reusing its wording:\n\n{TEXT}",
    "ordinary-1": "Write a short story about a robot who learns to paint.",
    "ordinary-2": "What are three good habits for staying healthy? Explain each briefly.",
}
CONFIGS = {
    "plain": ({}, False),
    "pa": ({"ATTENTION_BACKEND": "PA"}, False),
    "lookup": ({}, True),
}


def worker(model: str | None, config: str, new: int, props: dict[str, str]) -> dict:
    from ovchat import Engine, GenerationOptions, resolve

    extra, lookup = CONFIGS[config]
    engine = Engine(resolve(model), properties={**extra, **props}, prompt_lookup=lookup)
    options = GenerationOptions(max_new_tokens=new, temperature=0, repetition_penalty=1.0)
    out = {}
    for name, prompt in [("warmup", "Hello!"), *PROMPTS.items()]:
        times, text = [], []
        cpu = time.process_time()
        for chunk in engine.stream([{"role": "user", "content": prompt}], options):
            if chunk.text:
                times.append(time.perf_counter())
                text.append(chunk.text)
            last = chunk
        cpu = time.process_time() - cpu
        n = last.generated_tokens
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        out[name] = {"tps": (n - 1) / span if span > 0 else float("nan"), "n": n,
                     "cpu_ms": cpu * 1000 / max(1, n), "text": "".join(text)}  # fmt: skip
    engine.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--new", type=int, default=192)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("-p", "--property", action="append", default=[])
    ap.add_argument("--json")
    a = ap.parse_args()
    props = dict(kv.split("=", 1) for kv in a.property)
    cfgs = a.configs.split(",")
    res: dict[str, list[dict]] = {c: [] for c in cfgs}
    loads = []
    for r in range(a.rounds):
        for c in cfgs[r % len(cfgs) :] + cfgs[: r % len(cfgs)]:
            load = os.getloadavg()
            job = json.dumps([a.model, c, a.new, props])
            code = "import json,sys; from prompt_lookup_bench import worker; " \
                   "print(json.dumps(worker(*json.loads(sys.argv[1]))))"  # fmt: skip
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
            p = subprocess.run([sys.executable, "-c", code, job], capture_output=True, text=True,
                               env=env)  # fmt: skip
            if p.returncode:
                print(c, "FAILED", p.stderr[-1500:], file=sys.stderr)
                continue
            o = json.loads(p.stdout.strip().splitlines()[-1])
            res[c].append(o)
            loads.append(load[0])
            tps = {k: round(v["tps"], 1) for k, v in o.items()}
            print(f"round {r + 1} {c}: {tps} load {load[0]:.1f}", file=sys.stderr, flush=True)
    kinds = list(PROMPTS)
    print(f"load average during the runs: {min(loads):.1f}-{max(loads):.1f}")
    print("| config | " + " | ".join(kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    for c, runs in res.items():
        cells = []
        for k in kinds:
            v = [x[k]["tps"] for x in runs]
            base = [x[k]["tps"] for x in res.get("plain", [])]
            ratio = statistics.median(v) / statistics.median(base) if v and base else float("nan")
            ref = res.get("pa") or runs
            same = "" if runs[0][k]["text"] == ref[0][k]["text"] else " ≠pa"
            cells.append(f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f}) "
                         f"×{ratio:.2f}{same} n={runs[0][k]['n']}")  # fmt: skip
        print(f"| {c} | " + " | ".join(cells) + " |")
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": res, "load": loads}, indent=1) + "\n")


if __name__ == "__main__":
    main()
