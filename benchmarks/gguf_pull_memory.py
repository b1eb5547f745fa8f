"""Peak memory of a GGUF pull (`ovchat export FILE.gguf DIR`, the runtime route: openvino-genai's
reader, then every weight checked against the GGUF and its blocks written), as a multiple of
the file's size.

The export runs in a subprocess; its process tree (ovchat and openvino-genai's reader process)
is sampled every 20 ms: the peak of the tree's summed RSS, and each process's own peak
(ru_maxrss). `--make-1b FILE` first writes a 1B-class llama GGUF (Llama-3.2-1B's widths:
hidden 2048, 16 layers, 32/8 heads, FFN 8192) with random weights in the default model's
types (Q4_1 matrices, a Q8_0 embedding, F32 norms) and SmolLM2's tokenizer, with gguf-py.

    .venv/bin/python benchmarks/gguf_pull_memory.py --make-1b /tmp/llama1b.Q4_1.gguf
    .venv/bin/python benchmarks/gguf_pull_memory.py /tmp/llama1b.Q4_1.gguf
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

SHAPE_1B = {"embedding_length": 2048, "block_count": 16, "feed_forward_length": 8192,
            "attention.head_count": 32, "attention.head_count_kv": 8}  # fmt: skip


def make_1b(out: Path) -> None:
    import gguf

    from ovchat.library.default import default_gguf

    src = gguf.GGUFReader(str(default_gguf()))
    w = gguf.GGUFWriter(str(out), "llama")
    for key, f in src.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        short = key.removeprefix("llama.")
        vtype = gguf.GGUFValueType(f.types[0])
        sub = gguf.GGUFValueType(f.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
        value = SHAPE_1B.get(short, f.contents())
        if short == "rope.dimension_count":
            value = 2048 // 32
        w.add_key_value(key, value, vtype, sub_type=sub)
    rng = np.random.default_rng(0)
    h, ff, kv = 2048, 8192, 2048 // 32 * 8
    vocab = int(src.fields["llama.vocab_size"].contents())

    def add(name: str, rows: int, cols: int, kind: gguf.GGMLQuantizationType) -> None:
        x = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(x, kind), raw_dtype=kind)

    add("token_embd.weight", vocab, h, gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", np.ones(h, np.float32))
    q41 = gguf.GGMLQuantizationType.Q4_1
    for i in range(16):
        b = f"blk.{i}"
        w.add_tensor(f"{b}.attn_norm.weight", np.ones(h, np.float32))
        w.add_tensor(f"{b}.ffn_norm.weight", np.ones(h, np.float32))
        for name, rows, cols in (("attn_q", h, h), ("attn_k", kv, h), ("attn_v", kv, h),
                                 ("attn_output", h, h), ("ffn_gate", ff, h),
                                 ("ffn_up", ff, h), ("ffn_down", h, ff)):  # fmt: skip
            add(f"{b}.{name}.weight", rows, cols, q41)
        print(f"layer {i + 1}/16", file=sys.stderr, flush=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def measure(gguf_file: Path) -> dict[str, float | str]:
    out = Path(tempfile.mkdtemp(prefix="ovchat-pull-mem-"))
    cmd = [sys.executable, "-m", "ovchat", "export", str(gguf_file), str(out / "ir"),
           "--weight-format", "gguf"]  # fmt: skip
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    me = psutil.Process(p.pid)
    peak = 0.0
    while p.poll() is None:
        try:
            procs = [me, *me.children(recursive=True)]
            peak = max(peak, sum(q.memory_info().rss for q in procs) / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.02)
    err = p.stderr.read() if p.stderr else ""
    seconds = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    if p.returncode != 0:
        raise SystemExit(f"export failed: {err.strip().splitlines()[-1:]}")
    size = gguf_file.stat().st_size / 2**20
    per_process = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "file": gguf_file.name,
        "file_mb": round(size, 1),
        "tree_peak_rss_mb": round(peak, 1),
        "tree_peak_x_file": round(peak / size, 2),
        "largest_process_peak_rss_mb": round(per_process, 1),
        "seconds": round(seconds, 1),
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gguf", nargs="?", type=Path, help="the GGUF to pull")
    ap.add_argument("--make-1b", type=Path, help="first write a 1B-class GGUF here")
    a = ap.parse_args()
    if a.make_1b:
        make_1b(a.make_1b)
        if a.gguf is None:
            return
    if a.gguf is None:
        ap.error("name a GGUF file")
    from ovchat.bench.machine import cpu_model

    print(json.dumps({**measure(a.gguf), "cpu": cpu_model()}, indent=2))


if __name__ == "__main__":
    main()
