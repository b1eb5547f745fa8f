"""A tiny llama GGUF written from a tiny Hugging Face model (tests only): the weights
quantized by gguf-py (llama.cpp's own Python package) into the types given, q/k rows
permuted as llama.cpp's converter does, the BPE tokenizer stored as GGUF metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}  # fmt: skip


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of q/k rows (rotary interleaving)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    _, _, layer, *rest = hf.split(".")
    module = ".".join(rest[:-1])
    return f"blk.{layer}.{HF_TO_GGUF[module]}.weight"


def write_tiny_gguf(hf_dir: Path, out: Path, types: dict[str, str], file_type: bool = True) -> Path:
    """`types`: GGUF tensor kind (attn_q, ffn_up, token_embd, output, ...) → quant type name;
    matrices not named are Q8_0, vectors F32. `file_type=False` leaves out general.file_type
    (which llama.cpp always writes and openvino-genai's reader needs)."""
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((hf_dir / "config.json").read_text())
    tok = json.loads((hf_dir / "tokenizer.json").read_text())
    template = hf_dir / "chat_template.jinja"
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name("tiny")
    if file_type:
        w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg.get("rope_theta") or 10000.0)
    w.add_vocab_size(cfg["vocab_size"])
    vocab = tok["model"]["vocab"]
    specials = {a["content"]: a["id"] for a in tok["added_tokens"]}
    tokens = [""] * len(vocab)
    for t, i in {**vocab, **specials}.items():
        tokens[i] = t
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    merges = tok["model"]["merges"]
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    if template.is_file():
        w.add_chat_template(template.read_text())
    weights = load_file(str(hf_dir / "model.safetensors"))
    for name in sorted(weights):
        x = weights[name].astype(np.float32)
        g = gguf_name(name)
        if ".q_proj." in name:
            x = _permute(x, cfg["num_attention_heads"])
        elif ".k_proj." in name:
            x = _permute(x, cfg["num_key_value_heads"])
        if x.ndim == 1:
            w.add_tensor(g, x)
            continue
        kind = types.get(g.split(".")[-2] if g.startswith("blk.") else g.split(".")[0], "Q8_0")
        qtype = gguf.GGMLQuantizationType[kind]
        w.add_tensor(g, gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out
