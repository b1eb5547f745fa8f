"""A GGUF tensor's quantized blocks as OpenVINO's compressed-weight pattern: integer codes q
(u4 or u8) in groups, an f16 scale and an f16 zero point per group, w = (q - z) * scale.

Each type's block layout (ggml's) is decoded here into that one form:

- Q4_0: w = d*(q - 8)                → u4, z = 8, groups of 32 (exact)
- Q4_1: w = d*q + m                  → u4, z = -m/d (f16), groups of 32
- Q5_0: w = d*(q - 16), q 5-bit      → u8, z = 16 (exact; 8-bit storage, OpenVINO has no u5)
- Q5_1: w = d*q + m, q 5-bit         → u8, z = -m/d
- Q8_0: w = d*q, q int8              → u8 = q + 128, z = 128 (exact)
- Q4_K: w = d*sc*q - dmin*mn, 6-bit sc/mn per 32 → u4, scale f16(d*sc), z = dmin*mn/(d*sc)
- Q5_K: as Q4_K with 5-bit q         → u8, groups of 32
- Q6_K: w = d*sc*(q - 32), int8 sc per 16 → u8, z = 32, groups of 16

The f16 products (d*sc) and quotients (z) round at 2^-11 relative: the check against the
GGUF's own dequantization (gguf.quants) allows that and nothing more. Written by hand:
openvino-genai's GGUF reader rounds the fractional zero points of Q4_1 and Q4_K to integers
and cannot read Q5_* at all (docs/gguf.md has the measurements); nncf and optimum do not
read GGUF blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QK_K = 256
# type → (bytes per block, weights per block)
LAYOUT = {
    "Q4_0": (18, 32), "Q4_1": (20, 32), "Q5_0": (22, 32), "Q5_1": (24, 32), "Q8_0": (34, 32),
    "Q4_K": (144, QK_K), "Q5_K": (176, QK_K), "Q6_K": (210, QK_K),
}  # fmt: skip
KEPT_TYPES = tuple(LAYOUT)


@dataclass
class Blocks:
    """q [rows, groups, group] (uint8 codes), scale and zero [rows, groups, 1] (f16)."""

    kind: str
    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray
    bits: int  # 4 (u4) or 8 (u8) in the IR

    @property
    def shape(self) -> tuple[int, int]:
        rows, groups, size = self.q.shape
        return rows, groups * size

    def dequantize(self) -> np.ndarray:
        """What the IR computes: (q - z) * scale in f32, [rows, cols]."""
        return self.dequantize_rows(0, self.shape[0])

    def dequantize_rows(self, r0: int, r1: int) -> np.ndarray:
        q, z, s = (a[r0:r1].astype(np.float32) for a in (self.q, self.zero, self.scale))
        return ((q - z) * s).reshape(q.shape[0], -1)

    def permute_rows(self, n_head: int) -> Blocks:
        """Undo llama.cpp's rotary interleaving of q/k rows (whole rows move)."""
        q, scale, zero = (unpermute(a, n_head) for a in (self.q, self.scale, self.zero))
        return Blocks(self.kind, q, scale, zero, self.bits)


def unpermute(x: np.ndarray, n_head: int) -> np.ndarray:
    dim = x.shape[0] // n_head // 2
    return x.reshape(n_head, dim, 2, *x.shape[1:]).swapaxes(2, 1).reshape(x.shape)


def _f16(raw: np.ndarray) -> np.ndarray:
    return raw.copy().view(np.float16)


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """[..., n] packed bytes → [..., 2n]: low nibbles first, then high (ggml's order)."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _zero(m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """z = -m/d as f32 (0 where d is 0: handled by `_flat`)."""
    d32 = d.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d32 != 0, -m.astype(np.float32) / d32, 0.0)


def _flat(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, offset: np.ndarray) -> None:
    """A group whose scale is 0 holds one value, `offset` (w = offset): if its codes are all
    equal (q0), write it as (q0 - (q0 - 1)) * offset. In place; other groups untouched."""
    flat = (scale.astype(np.float32) == 0) & (offset.astype(np.float32) != 0)
    if flat.any():
        scale[flat] = offset[flat]
        zero[flat] = (q[..., :1].astype(np.float32) - 1)[flat]


def decode(kind: str, raw: np.ndarray, rows: int, cols: int) -> Blocks:
    """Decode a tensor's raw bytes ([rows, row bytes] or flat) of `kind` into Blocks."""
    size, per = LAYOUT[kind]
    nb = cols // per
    b = np.ascontiguousarray(raw).view(np.uint8).reshape(rows, nb, size)
    q: np.ndarray
    qh: np.ndarray
    qs: np.ndarray
    ql: np.ndarray
    if kind in ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"):
        d = _f16(b[..., 0:2])
        if kind == "Q8_0":
            q = (b[..., 2:34].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
            return Blocks(kind, q, d, np.full_like(d, 128), 8)
        m = _f16(b[..., 2:4]) if kind in ("Q4_1", "Q5_1") else None
        at = 2 if m is None else 4
        if kind.startswith("Q5"):
            qh = b[..., at : at + 4].copy().view(np.uint32)
            high = ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.uint8)
            q = _nibbles(b[..., at + 4 : at + 20]) | (high << 4)
        else:
            q = _nibbles(b[..., at : at + 16])
        if m is None:
            return Blocks(kind, q, d, np.full_like(d, 16 if kind == "Q5_0" else 8), 8 if
                          kind == "Q5_0" else 4)  # fmt: skip
        zero = _zero(m, d)
        scale = d.astype(np.float32)
        _flat(q, scale, zero, m.astype(np.float32))
        bits = 8 if kind == "Q5_1" else 4
        return Blocks(kind, q, scale.astype(np.float16), zero.astype(np.float16), bits)
    if kind == "Q6_K":
        ql, qh = b[..., :128], b[..., 128:192]
        sc = b[..., 192:208].view(np.int8).astype(np.float32)  # [rows, nb, 16]
        d = _f16(b[..., 208:210]).astype(np.float32)
        # 2 halves of 128 weights: ql 64 bytes (lo nibbles then hi), qh 32 bytes (4 x 2 bits)
        ql = ql.reshape(rows, nb, 2, 64)
        low = np.concatenate([ql & 0x0F, ql >> 4], axis=-1)  # [.., 2, 128]
        qh = qh.reshape(rows, nb, 2, 1, 32) >> np.array([0, 2, 4, 6], np.uint8).reshape(4, 1)
        top = (qh & 3).reshape(rows, nb, 2, 128)
        q = (low | (top << 4)).reshape(rows, nb * 16, 16)
        scale = (d * sc).reshape(rows, nb * 16, 1).astype(np.float16)
        return Blocks(kind, q, scale, np.full_like(scale, 32), 8)
    # Q4_K / Q5_K: d, dmin, 12 bytes of 6-bit scales and mins for 8 groups of 32
    d = _f16(b[..., 0:2]).astype(np.float32)
    dmin = _f16(b[..., 2:4]).astype(np.float32)
    s = b[..., 4:16].reshape(rows, nb, 3, 4)
    sc = np.concatenate([s[..., 0, :] & 0x3F, (s[..., 2, :] & 0x0F) | ((s[..., 0, :] >> 2) & 0x30)],
                        axis=-1).astype(np.float32)  # fmt: skip
    mn = np.concatenate([s[..., 1, :] & 0x3F, (s[..., 2, :] >> 4) | ((s[..., 1, :] >> 2) & 0x30)],
                        axis=-1).astype(np.float32)  # fmt: skip
    if kind == "Q4_K":
        qs = b[..., 16:144].reshape(rows, nb, 4, 1, 32) >> np.array([0, 4], np.uint8).reshape(2, 1)
        q = (qs & 0x0F).reshape(rows, nb * 8, 32)
    else:
        qh = b[..., 16:48].reshape(rows, nb, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(8, 1)
        qs = b[..., 48:176].reshape(rows, nb, 4, 1, 32) >> np.array([0, 4], np.uint8).reshape(2, 1)
        q = ((qs & 0x0F).reshape(rows, nb, 8, 32) | ((qh & 1) << 4)).reshape(rows, nb * 8, 32)
    scale = (d * sc).reshape(rows, nb * 8, 1).astype(np.float16).astype(np.float32)
    offset = (dmin * mn).reshape(rows, nb * 8, 1)  # w = scale*q - offset
    zero = _zero(-offset, scale)
    _flat(q, scale, zero, -offset)
    bits = 4 if kind == "Q4_K" else 8
    return Blocks(kind, q, scale.astype(np.float16), zero.astype(np.float16), bits)
