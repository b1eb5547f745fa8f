"""The GGUF's blocks in openvino-genai's IR, checked tensor by tensor.

genai's IR names no weight, so each GGUF matrix is found by its content: the u4/u8 codes
genai wrote (for the types it reads) or the F16 values ovchat gave it (for the others). Each
weight the IR computes is then compared with the GGUF's own dequantization (gguf-py, llama.cpp's
reference code), and:

- genai's subgraph is kept where it is exact to f16 rounding (measured: Q4_0, Q8_0, Q6_K);
- where it is not (measured: Q4_1 and Q4_K, whose fractional zero points genai rounds to
  integers) and for the types genai cannot read (Q5_0, Q5_1, Q5_K, given to it as F16),
  ovchat's own subgraph of the blocks (convert/gguf_blocks.py) replaces it, after the same
  check;
- any other type stays the F16 genai was given (the manifest says so).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError
from .gguf_blocks import KEPT_TYPES, Blocks, decode, unpermute

# Allowed difference from the GGUF's dequantization, relative to the tensor's largest weight:
# f16 rounding of a scale, product or zero point (2^-11 relative each, a few combined).
MAX_REL_DIFF = 2.0**-9
# llama.cpp's converter interleaves the q/k rows for rotary embedding only for these (its
# LlamaModel); Qwen2 and Qwen3 (NeoX-style rotary) keep Hugging Face's row order.
PERMUTED_ARCHS = ("llama",)
ROWS = 2048  # weights are compared and hashed this many rows at a time: memory stays small


def _digest(a: np.ndarray) -> str:
    """A digest of an array's bytes, taken a block of rows at a time (little memory)."""
    h = hashlib.blake2b(digest_size=16)
    for r0 in range(0, max(1, a.shape[0]), ROWS):
        h.update(np.ascontiguousarray(a[r0 : r0 + ROWS]).tobytes())
    return h.hexdigest()


def _codes(const: Any, r0: int = 0, r1: int | None = None) -> np.ndarray:
    """A u4/u8 constant's codes, one per byte, in its logical shape (rows r0:r1)."""
    shape = [int(s) for s in const.get_shape()]
    data = np.asarray(const.get_data()).view(np.uint8)
    per_row = int(np.prod(shape[1:]))
    r1 = shape[0] if r1 is None else min(r1, shape[0])
    if const.get_element_type().get_type_name() == "u4":
        flat = data.reshape(-1)[r0 * per_row // 2 : (r1 * per_row + 1) // 2]
        data = np.stack([flat & 0x0F, flat >> 4], axis=-1).reshape(-1)[: (r1 - r0) * per_row]
    else:
        data = data.reshape(-1)[r0 * per_row : r1 * per_row]
    return data.reshape([r1 - r0, *shape[1:]])


def _const_digest(const: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    rows = int(const.get_shape()[0])
    for r0 in range(0, rows, ROWS):
        h.update(_codes(const, r0, r0 + ROWS).tobytes())
    return h.hexdigest()


def _index(model: Any) -> dict[str, list[Any]]:
    """digest of codes (u4/u8, rank 3) or of f16 values (rank 2) → the constants holding them."""
    out: dict[str, list[Any]] = {}
    for op in model.get_ops():
        if op.get_type_name() != "Constant" or len(op.get_shape()) not in (2, 3):
            continue
        et = op.get_element_type().get_type_name()
        if et in ("u4", "u8") and op.get_shape()[-1] > 1:
            out.setdefault(_const_digest(op), []).append(op)
        elif et == "f16" and len(op.get_shape()) == 2:
            out.setdefault(_digest(np.asarray(op.get_data())), []).append(op)
    return out


def _one_consumer(node: Any) -> Any:
    targets = list(node.output(0).get_target_inputs())
    return targets[0].get_node() if len(targets) == 1 else None


def _weight_output(const: Any) -> Any:
    """The node whose output is the f32 weight [rows, cols] built from `const`."""
    node = const
    for _ in range(6):
        out = node.output(0)
        if out.get_element_type().get_type_name() == "f32" and len(out.get_partial_shape()) == 2:
            return node
        nxt = _one_consumer(node)
        if nxt is None:
            break
        node = nxt
    raise ExportError("openvino-genai's IR has a weight of an unexpected form", "report this")


class _GenaiWeight:
    """What genai's subgraph over u4/u8 codes computes: (q - z) * scale, f32, by rows."""

    def __init__(self, const: Any) -> None:
        sub = _one_consumer(_one_consumer(const))  # Convert → Subtract
        self.const = const
        self.zp = _codes(sub.input_value(1).get_node().input_value(0).get_node())
        scale = _one_consumer(sub).input_value(1).get_node()
        self.scale = np.asarray(scale.get_data(), np.float32)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        q = _codes(self.const, r0, r1).astype(np.float32)
        w = (q - self.zp[r0:r1].astype(np.float32)) * self.scale[r0:r1]
        return w.reshape(w.shape[0], -1)


def _subgraph(b: Blocks) -> Any:
    import openvino as ov
    import openvino.opset13 as ops

    rows, cols = b.shape
    kind = ov.Type.u4 if b.bits == 4 else ov.Type.u8
    x = ops.convert(ops.constant(b.q, dtype=kind), ov.Type.f16)
    x = ops.subtract(x, ops.constant(b.zero))
    x = ops.multiply(x, ops.constant(b.scale))
    x = ops.reshape(x, ops.constant(np.array([rows, cols], dtype=np.int64)), False)
    return ops.convert(x, ov.Type.f32)


def _digest_rows(rows_of: Any, rows: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    for r0 in range(0, rows, ROWS):
        h.update(np.ascontiguousarray(rows_of(r0, min(rows, r0 + ROWS))).tobytes())
    return h.hexdigest()


def _compare(ref: Any, mine: Any, theirs: Any, rows: int) -> tuple[float, float, float]:
    """max |ref|, and the max differences of `mine` and `theirs` (row functions) from it."""
    amax = err_mine = err_theirs = 0.0
    for r0 in range(0, rows, ROWS):
        r1 = min(rows, r0 + ROWS)
        want = ref(r0, r1)
        amax = max(amax, float(np.abs(want).max()))
        if mine is not None:
            err_mine = max(err_mine, float(np.abs(mine(r0, r1) - want).max()))
        if theirs is not None:
            err_theirs = max(err_theirs, float(np.abs(theirs(r0, r1) - want).max()))
    return amax, err_mine, err_theirs


MADV_DONTNEED = 4  # Linux <sys/mman.h>


def drop_pages(*files: Path) -> None:
    """Let go of the resident pages of this process's read-only mappings of `files` (gguf-py's
    memmap of the GGUF, OpenVINO's of the IR's weights): pages touched once for one tensor
    would otherwise stay counted until the end, so a pull would hold the GGUF and the IR
    whole. A read-only mapping has no pages of its own to lose: what is touched again is read
    back from the file. By hand (madvise through ctypes) because neither gguf-py nor OpenVINO
    lets go of a mapping's pages; Linux only, elsewhere nothing is done."""
    if sys.platform != "linux":
        return
    want = {str(f.resolve()) for f in files}
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    for line in maps:
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5] in want and "w" not in parts[1]:
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            libc.madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), MADV_DONTNEED)


def _heads(reader: Any, arch: str) -> tuple[int, int]:
    def num(key: str) -> int | None:
        f = reader.fields.get(f"{arch}.{key}")
        return int(f.contents()) if f is not None else None

    n_head = num("attention.head_count") or 1
    return n_head, num("attention.head_count_kv") or n_head


def keep_blocks(reader: Any, xml: Path, substituted: list[str]) -> dict[str, Any]:
    """Check and, where needed, replace every quantized weight of genai's IR at `xml`
    (`reader`: gguf-py's over the GGUF; both files' pages are let go tensor by tensor)."""
    import openvino as ov
    from gguf import quants

    arch = str(reader.fields["general.architecture"].contents())
    n_head, n_kv = _heads(reader, arch)
    mapped = (Path(str(reader.data.filename)), xml.with_suffix(".bin"))
    model = ov.Core().read_model(str(xml))
    index = _index(model)
    drop_pages(*mapped)
    kept_genai: Counter[str] = Counter()
    kept_ovchat: Counter[str] = Counter()
    as_f16: Counter[str] = Counter()
    genai_worst: dict[str, float] = {}
    worst = 0.0
    for t in reader.tensors:
        drop_pages(*mapped)
        kind = t.tensor_type.name
        if len(t.shape) != 2 or kind in ("F32", "F16", "BF16"):
            continue
        cols, rows = int(t.shape[0]), int(t.shape[1])
        heads = n_head if ".attn_q." in t.name else n_kv if ".attn_k." in t.name else 0
        heads = heads if arch in PERMUTED_ARCHS else 0
        # HF row order (llama.cpp's rotary interleaving of q/k undone): row i is GGUF row order[i]
        order = unpermute(np.arange(rows), heads) if heads else np.arange(rows)
        raw = np.asarray(t.data).reshape(rows, -1)

        def ref(r0: int, r1: int, raw: Any = raw, order: Any = order, t: Any = t) -> np.ndarray:
            return quants.dequantize(raw[order[r0:r1]], t.tensor_type).reshape(r1 - r0, -1)

        b = decode(kind, raw, rows, cols) if kind in KEPT_TYPES else None
        if b is not None and heads:
            b = b.permute_rows(heads)
        if t.name in substituted:
            key = _digest_rows(lambda r0, r1: ref(r0, r1).astype(np.float16), rows)
        elif b is not None:
            key = _digest(b.q)
        else:
            continue
        consts = index.get(key, [])
        if not consts:
            raise ExportError(
                f"GGUF tensor {t.name} ({kind}) was not found in openvino-genai's IR",
                "export it with another weight format (int8): the transformers route",
                param="weight_format",
            )
        mine = b.dequantize_rows if b is not None else None
        theirs = None if t.name in substituted else _GenaiWeight(consts[0]).rows
        amax, err_mine, err_theirs = _compare(ref, mine, theirs, rows)
        tol = MAX_REL_DIFF * max(1e-12, amax)
        if theirs is not None:
            genai_worst[kind] = max(genai_worst.get(kind, 0.0), err_theirs / max(1e-12, amax))
            if err_theirs <= tol:
                kept_genai[kind] += 1
                continue
        if b is None:  # a type ovchat does not map: the F16 genai was given stays
            as_f16[kind] += 1
            continue
        if err_mine > tol:
            raise ExportError(
                f"GGUF tensor {t.name} ({kind}) cannot be written exactly (difference "
                f"{err_mine:.3g})", "export it with another weight format (int8)",
                param="weight_format",
            )  # fmt: skip
        worst = max(worst, err_mine / max(1e-12, amax))
        sub = _subgraph(b)
        for c in consts:
            out = _weight_output(c)
            for ti in list(out.output(0).get_target_inputs()):
                ti.replace_source_output(sub.output(0))
        kept_ovchat[kind] += 1
    drop_pages(*mapped)
    model.validate_nodes_and_infer_types()
    tmp = xml.with_name("_blocks.xml")
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    del model
    os.replace(tmp, xml)
    os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
    return {
        "kept_as_openvino_genai_wrote": dict(kept_genai),
        "blocks_written_by_ovchat": dict(kept_ovchat),
        "dequantized_to_f16": dict(as_f16),
        "openvino_genai_max_rel_diff": {k: float(f"{v:.3g}") for k, v in genai_worst.items()},
        "max_rel_diff_vs_gguf": float(f"{worst:.3g}"),
    }
