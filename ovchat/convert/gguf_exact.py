"""The `gguf` recipe: a GGUF's own quantized blocks written into the OpenVINO IR as they are.

A quantized GGUF's weights already sit on a 4- or 8-bit grid; dequantizing them and letting
nncf quantize again rounds them a second time (SmolLM2's Q4_1 GGUF: optimum-intel's int4 recipe
gives perplexity 1.18x the dequantized model, top-1 agreement 0.77). This module keeps the
grid: starting from an fp16 export of the dequantized model (optimum's graph, tokenizers,
configs), each weight constant, found by its Hugging Face parameter name, is swapped for the
decompression subgraph of its GGUF tensor, the pattern OpenVINO's CPU plugin runs as a
compressed-weight MatMul/Gather:

- Q4_1 (blocks of 32: w = d*q + m, q in 0..15, d and m f16) → u4 [rows, cols/32, 32], f16
  scale d and f16 zero point z = -m/d, OpenVINO computing (q - z) * d. nncf's int4 asym
  would store z as u4 (an integer), which is what makes re-quantizing lossy.
- Q4_0 (w = d*(q - 8)) → u4 with zero point 8; Q8_0 (w = d*q, q int8) → i8 and f16 scale.
- Any other quantized type (K-quants, Q5_*, IQ*, ...) and F16/BF16 matrices: no exact
  mapping here, so those weights take the normal path: nncf int8 asymmetric per channel
  (data-free) on what is left in float. F32 vectors (norms) stay as they are.

Every swapped tensor is checked before writing: the blocks, dequantized, must give the
Hugging Face weight the GGUF import produced (to within f16 rounding of z), so a wrong
name mapping or q/k permutation cannot pass. Used only on the transformers route (the
architectures openvino-genai's GGUF reader does not take); llama, qwen2 and qwen3 files go
through that reader instead (gguf_genai.py, gguf_ir.py). Written by hand: optimum-intel and
nncf do not keep a GGUF's blocks in an IR.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError

BLOCK = 32  # Q4_0, Q4_1 and Q8_0 all use blocks of 32 weights
EXACT_TYPES = ("Q4_0", "Q4_1", "Q8_0")
FLOAT_TYPES = ("F32", "F16", "BF16")
# The blocks, dequantized by GGUF's formula, against the HF weight the import made (the same
# numbers: only f32 summation order differs). Relative to the tensor's largest weight.
MAX_MAPPING_DIFF = 1e-6
# The IR's weights against GGUF's: f16 rounding of z = -m/d costs at most |m| * 2^-11.
MAX_ZERO_POINT_DIFF = 1e-3
# llama.cpp's tensor names → transformers' (llama-style decoders: Llama, SmolLM2, Mistral, Qwen2)
BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}  # fmt: skip


def hf_name(gguf_name: str) -> str | None:
    """The Hugging Face parameter a GGUF weight becomes (None: not a matrix we map)."""
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{BLOCK_NAMES[parts[2]]}.weight"
    return None


def unpermute(x: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's rotary interleaving of q/k rows (as transformers' GGUF import does)."""
    dim = x.shape[0] // n_head // 2
    return x.reshape(n_head, dim, 2, *x.shape[1:]).swapaxes(2, 1).reshape(x.shape)


def blocks(tensor: Any) -> dict[str, Any]:
    """A GGUF tensor's raw blocks: {"kind", "q": [rows, cols/32, 32], "d", "m"?: [.., 1]}."""
    kind = tensor.tensor_type.name
    cols = int(tensor.shape[0])
    rows = int(np.prod([int(s) for s in tensor.shape[1:]])) if len(tensor.shape) > 1 else 1
    nb = cols // BLOCK
    raw = np.asarray(tensor.data).reshape(rows, -1).view(np.uint8)
    if kind == "Q4_1":
        b = raw.reshape(rows, nb, 20)
        qs = b[..., 4:20]  # low nibbles are weights 0..15, high nibbles 16..31
        return {"kind": kind, "d": b[..., 0:2].copy().view(np.float16),
                "m": b[..., 2:4].copy().view(np.float16),
                "q": np.concatenate([qs & 0x0F, qs >> 4], axis=-1)}  # fmt: skip
    if kind == "Q4_0":
        b = raw.reshape(rows, nb, 18)
        qs = b[..., 2:18]
        return {"kind": kind, "d": b[..., 0:2].copy().view(np.float16),
                "q": np.concatenate([qs & 0x0F, qs >> 4], axis=-1)}  # fmt: skip
    if kind == "Q8_0":
        b = raw.reshape(rows, nb, 34)
        return {"kind": kind, "d": b[..., 0:2].copy().view(np.float16),
                "q": b[..., 2:34].copy().view(np.int8)}  # fmt: skip
    raise ValueError(f"{tensor.name}: {kind} has no exact mapping")


def dequantize(b: dict[str, Any]) -> np.ndarray:
    """The f32 weight [rows, cols] the blocks stand for (GGUF's own formula)."""
    d = b["d"].astype(np.float32)
    q = b["q"].astype(np.float32)
    if b["kind"] == "Q4_1":
        w = q * d + b["m"].astype(np.float32)
    elif b["kind"] == "Q4_0":
        w = (q - 8) * d
    else:
        w = q * d
    return w.reshape(w.shape[0], -1)


def scale_and_zero_point(b: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """The IR's f16 scale and zero point: w = (q - z) * scale (no zero point for Q8_0)."""
    d = b["d"]
    if b["kind"] == "Q8_0":
        return d, None
    if b["kind"] == "Q4_0":
        return d, np.full_like(d, 8.0)
    m, d32 = b["m"], d.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(d32 != 0, -m.astype(np.float32) / d32, 0.0)
    # A block of equal weights has d == 0 and every q equal (q0): w = m = (q0 - (q0 - 1)) * m.
    flat = d32 == 0
    if flat.any():
        d = np.where(flat, m, d)
        z = np.where(flat, b["q"][..., :1].astype(np.float32) - 1, z)
    return d, z.astype(np.float16)


def ir_dequantize(b: dict[str, Any]) -> np.ndarray:
    """What the IR's subgraph computes: (q - z) * scale, from f16 z and scale, in f32."""
    scale, z = scale_and_zero_point(b)
    q = b["q"].astype(np.float32)
    if z is not None:
        q = q - z.astype(np.float32)
    w = q * scale.astype(np.float32)
    return w.reshape(w.shape[0], -1)


def subgraph(b: dict[str, Any]) -> Any:
    """The OpenVINO decompression subgraph of the blocks → f32 weight [rows, cols]."""
    import openvino as ov
    import openvino.opset13 as ops

    rows, nb, _ = b["q"].shape
    scale, z = scale_and_zero_point(b)
    if b["kind"] == "Q8_0":
        x = ops.convert(ops.constant(b["q"], dtype=ov.Type.i8), ov.Type.f16)
    else:
        x = ops.convert(ops.constant(b["q"].astype(np.uint8), dtype=ov.Type.u4), ov.Type.f16)
        x = ops.subtract(x, ops.constant(z))
    x = ops.multiply(x, ops.constant(scale))
    x = ops.reshape(x, ops.constant(np.array([rows, nb * BLOCK], dtype=np.int64)), False)
    return ops.convert(x, ov.Type.f32)


def weight_constants(model: Any) -> dict[str, Any]:
    """HF parameter name → the Constant holding it in optimum's fp16/fp32 IR."""
    out: dict[str, Any] = {}
    for op in model.get_ops():
        if op.get_type_name() != "Constant":
            continue
        for n in set(op.output(0).get_names()) | {op.get_friendly_name()}:
            key = n.removeprefix("self.")
            if key.endswith(".weight") and key.startswith(("model.", "lm_head.")):
                out[key] = op
    return out


def _swap(const: Any, sub: Any) -> None:
    """Feed `sub` wherever `const` (through its f16→f32 Convert, in an fp16 IR) was used."""
    for ti in list(const.output(0).get_target_inputs()):
        node = ti.get_node()
        if node.get_type_name() == "Convert":
            for ci in list(node.output(0).get_target_inputs()):
                ci.replace_source_output(sub.output(0))
        else:
            ti.replace_source_output(sub.output(0))


def apply(gguf: str | Path, ir_dir: Path, hf_dir: Path) -> dict[str, Any]:
    """Rewrite `ir_dir`'s model (an fp16/fp32 export of `hf_dir`, the GGUF's dequantized
    import) with the GGUF's own blocks; return what was done (for the manifest)."""
    import json

    import openvino as ov
    from gguf import GGUFReader
    from safetensors import safe_open

    cfg = json.loads((hf_dir / "config.json").read_text())
    n_head = int(cfg["num_attention_heads"])
    n_kv = int(cfg.get("num_key_value_heads") or n_head)
    xml = ir_dir / "openvino_model.xml"
    model = ov.Core().read_model(str(xml))
    consts = weight_constants(model)
    hf_files = sorted(hf_dir.glob("*.safetensors"))
    hf_weights = {}
    for f in hf_files:
        with safe_open(str(f), "np") as fh:
            hf_weights.update({k: (f, k) for k in fh.keys()})  # noqa: SIM118
    exact: Counter[str] = Counter()
    other: Counter[str] = Counter()
    worst = 0.0  # the IR's weights against GGUF's dequantized ones (f16 rounding of z)
    for t in GGUFReader(str(gguf)).tensors:
        kind, name = t.tensor_type.name, hf_name(t.name)
        if name is None:  # norms and other vectors stay as the fp16 export has them
            continue
        if kind not in EXACT_TYPES or name not in consts:
            other[kind] += 1
            continue
        b = blocks(t)
        if ".q_proj." in name or ".k_proj." in name:
            n = n_head if ".q_proj." in name else n_kv
            b = {k: unpermute(v, n) if isinstance(v, np.ndarray) else v for k, v in b.items()}
        if name in hf_weights:
            f, key = hf_weights[name]
            with safe_open(str(f), "np") as fh:
                want = fh.get_tensor(key).astype(np.float32)
            err = float(np.abs(dequantize(b) - want).max())
            if err > MAX_MAPPING_DIFF * max(1.0, float(np.abs(want).max())):
                raise ExportError(
                    f"GGUF tensor {t.name} ({kind}) does not match {name} "
                    f"(max difference {err:.3g}): the gguf recipe cannot map this model",
                    "export it with another weight format (int4, int8)",
                    param="weight_format",
                )
        exact_w = dequantize(b)
        diff = float(np.abs(ir_dequantize(b) - exact_w).max())
        if diff > MAX_ZERO_POINT_DIFF * max(1e-8, float(np.abs(exact_w).max())):
            raise ExportError(
                f"GGUF tensor {t.name} ({kind}) cannot be written exactly "
                f"(difference {diff:.3g})", "export it with another weight format (int4, int8)",
                param="weight_format",
            )  # fmt: skip
        worst = max(worst, diff)
        _swap(consts[name], subgraph(b))
        exact[kind] += 1
    if not exact:
        raise ExportError(
            f"{Path(gguf).name} has no Q4_0, Q4_1 or Q8_0 weights the gguf recipe can keep",
            "export it with another weight format (int4, int8)",
            param="weight_format",
        )
    model.validate_nodes_and_infer_types()
    if other:  # the normal path for the rest: int8 asym per channel, data-free
        import nncf

        model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    tmp = ir_dir / "_gguf_model.xml"
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    del model
    os.replace(tmp, xml)
    os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
    return {
        "exact_tensors": dict(exact),
        "int8_fallback_tensors": dict(other),
        "max_abs_diff_vs_dequantized": worst,
    }
