"""GGUF files of many tensor types made from the shipped SmolLM2 GGUF, with gguf-py alone (tests
only): its weights dequantized and quantized again into the types asked. gguf-py quantizes
the 32-blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) itself; the K-quants (Q4_K, Q5_K, Q6_K), which it
only dequantizes, are packed here by a plain min/max quantizer into ggml's block layout (the
layout is what the tests check; gguf-py's dequantization of the result is the reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

QK_K = 256


def _pack_scales(sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """8 six-bit scales and mins per super-block → ggml's 12 bytes."""
    out = np.zeros((*sc.shape[:-1], 12), np.uint8)
    out[..., 0:4] = (sc[..., :4] & 63) | ((sc[..., 4:] >> 4) << 6)
    out[..., 4:8] = (mn[..., :4] & 63) | ((mn[..., 4:] >> 4) << 6)
    out[..., 8:12] = (sc[..., 4:] & 15) | ((mn[..., 4:] & 15) << 4)
    return out


def _k_minmax(x: np.ndarray, levels: int) -> tuple[np.ndarray, ...]:
    """Q4_K/Q5_K: groups of 32 with w = d*sc*q - dmin*m."""
    g = x.reshape(-1, 8, 32)
    lo = np.minimum(g.min(-1), 0)
    scale = (g.max(-1) - lo) / levels
    d = (scale.max(-1) / 63).astype(np.float16)
    dmin = ((-lo).max(-1) / 63).astype(np.float16)
    d32 = np.where(d == 0, 1, d.astype(np.float32))[:, None]
    m32 = np.where(dmin == 0, 1, dmin.astype(np.float32))[:, None]
    sc = np.clip(np.round(scale / d32), 0, 63).astype(np.uint8)
    mn = np.clip(np.round(-lo / m32), 0, 63).astype(np.uint8)
    step = (d.astype(np.float32)[:, None] * sc)[..., None]
    off = (dmin.astype(np.float32)[:, None] * mn)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(step > 0, np.round((g + off) / step), 0)
    return np.clip(q, 0, levels).astype(np.uint8), d, dmin, sc, mn


def quantize_k(x: np.ndarray, kind: str) -> np.ndarray:
    """[rows, cols] f32 (cols a multiple of 256) → raw blocks [rows, bytes]."""
    rows = x.shape[0]
    xb = x.reshape(-1, QK_K).astype(np.float32)
    n = xb.shape[0]
    if kind == "Q6_K":
        g = xb.reshape(n, 16, 16)
        amax = np.abs(g).max(-1)
        scale = amax / 31
        d = (scale.max(-1) / 127).astype(np.float16)
        d32 = np.where(d == 0, 1, d.astype(np.float32))[:, None]
        sc = np.clip(np.round(scale / d32), -128, 127).astype(np.int8)
        step = (d.astype(np.float32)[:, None] * sc)[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(step != 0, np.round(g / step), 0)
        q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(n, 2, 128)
        ql = (q[..., :64] & 15) | ((q[..., 64:] & 15) << 4)
        h = (q >> 4).reshape(n, 2, 4, 32)
        qh = h[:, :, 0] | (h[:, :, 1] << 2) | (h[:, :, 2] << 4) | (h[:, :, 3] << 6)
        parts = [ql, qh, sc.view(np.uint8), d.view(np.uint8)[:, None]]
        return np.concatenate([p.reshape(n, -1) for p in parts], -1).reshape(rows, -1)
    levels = 15 if kind == "Q4_K" else 31
    q, d, dmin, sc, mn = _k_minmax(xb, levels)
    head = [d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2), _pack_scales(sc, mn)]
    low = (q & 15).reshape(n, 4, 2, 32)
    qs = (low[:, :, 0] | (low[:, :, 1] << 4)).reshape(n, 128)
    if kind == "Q4_K":
        return np.concatenate([*head, qs], -1).reshape(rows, -1)
    high = (q >> 4).reshape(n, 8, 32)
    qh = np.zeros((n, 32), np.uint8)
    for j in range(8):
        qh |= high[:, j] << j
    return np.concatenate([*head, qh, qs], -1).reshape(rows, -1)


def requantize(src: Path, out: Path, types: dict[str, str]) -> Path:
    """Copy GGUF `src` to `out` with each matrix re-quantized: `types` maps a tensor kind
    (attn_q, ffn_down, token_embd, ...) or a layer's (`3.ffn_down`) to a type; the others
    keep theirs."""
    import gguf

    r = gguf.GGUFReader(str(src))
    w = gguf.GGUFWriter(str(out), str(r.fields["general.architecture"].contents()))
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = gguf.GGUFValueType(f.types[0])
        sub = gguf.GGUFValueType(f.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, f.contents(), vtype, sub_type=sub)
    for t in r.tensors:
        part = t.name.split(".")[-2] if t.name.startswith("blk.") else t.name.split(".")[0]
        layer = f"{t.name.split('.')[1]}.{part}" if t.name.startswith("blk.") else part
        kind = types.get(layer, types.get(part))
        if kind is None or len(t.shape) != 2:
            w.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
            continue
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        qtype = gguf.GGMLQuantizationType[kind]
        if kind == "F16":
            w.add_tensor(t.name, x.astype(np.float16), raw_dtype=qtype)
        elif kind.endswith("_K"):
            w.add_tensor(t.name, quantize_k(x, kind), raw_dtype=qtype)
        else:
            w.add_tensor(t.name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out
