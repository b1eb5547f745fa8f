"""What an exported GGUF's OpenVINO model computes, checked against the file (tests and the
measurements in docs/gguf.md): every weight matrix evaluated by OpenVINO, compared tensor by
tensor with gguf-py's dequantization (llama.cpp's own reference code)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def ir_weights(xml: Path) -> list[np.ndarray]:
    """Every weight matrix the IR computes (MatMul and Gather inputs built from constants),
    evaluated by OpenVINO itself."""
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    outs = []
    for op in model.get_ops():
        t = op.get_type_name()
        port = 1 if t == "MatMul" else 0 if t == "Gather" else None
        if port is None:
            continue
        src = op.input_value(port)
        if len(src.get_partial_shape()) == 2 and src.get_partial_shape().is_static:
            outs.append(src)
    uniq = {(o.get_node().get_friendly_name(), o.get_index()): o for o in outs}
    result = []
    items = list(uniq.values())
    for i in range(0, len(items), 24):
        sub = ov.Model([ov.opset13.result(o) for o in items[i : i + 24]], [], "weights")
        res = ov.Core().compile_model(sub, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({})
        result.extend(np.array(v) for v in res.values())
    return result


def rel_diffs(xml: Path, gguf_file: Path) -> dict[str, tuple[str, float]]:
    """GGUF tensor name → (its type, largest difference between the IR's weight and gguf-py's
    dequantization of it, as a share of the tensor's largest weight), for every matrix."""
    import gguf

    ir = ir_weights(xml)
    r = gguf.GGUFReader(str(gguf_file))
    arch = str(r.fields["general.architecture"].contents())
    heads = int(r.fields[f"{arch}.attention.head_count"].contents())
    kv = int(r.fields[f"{arch}.attention.head_count_kv"].contents())
    out: dict[str, tuple[str, float]] = {}
    for t in r.tensors:
        if len(t.shape) != 2:
            continue
        ref = gguf.quants.dequantize(t.data, t.tensor_type)
        n = heads if ".attn_q." in t.name else kv if ".attn_k." in t.name else 0
        n = n if arch == "llama" else 0  # only llama's q/k rows are interleaved by llama.cpp
        if n:  # llama.cpp's rotary interleaving undone, as any reader of the file does
            dim = ref.shape[0] // n // 2
            ref = ref.reshape(n, dim, 2, -1).swapaxes(2, 1).reshape(ref.shape)
        same = [w for w in ir if w.shape == ref.shape]
        assert same, f"no weight of shape {ref.shape} in the IR for {t.name}"
        best = min(same, key=lambda w: float(np.abs(w[:2] - ref[:2]).max()))
        err = float(np.abs(best - ref).max())
        out[t.name] = (t.tensor_type.name, err / max(float(np.abs(ref).max()), 1e-30))
    return out
