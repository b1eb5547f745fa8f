"""How an embedding model pools and normalises, read from the model at export time.

sentence-transformers models say it in their own files: `modules.json` (a Normalize module
or not), the Pooling module's `config.json` (cls, mean, last token), and
`config_sentence_transformers.json` (query/document prompts). What they do not say, ovchat
guesses from the architecture (encoders: mean; decoders: last token, padded on the left)
and records as a guess. Flags (`overrides`) win over both. The result goes into the
manifest and becomes openvino-genai's `TextEmbeddingPipeline.Config` at load time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import OptionError

POOLINGS = ("cls", "mean", "last_token")
# sentence-transformers' Pooling config keys → genai's pooling types (max pooling has none).
ST_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_lasttoken": "last_token",
}
DECODER_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3")
MAX_SANE_LENGTH = 1 << 20  # tokenizers say 1e30 when they mean "no limit"
SETTINGS = (
    "pooling", "normalize", "query_instruction", "embed_instruction", "max_length", "matryoshka",
)  # fmt: skip


def _read(source: str, name: str) -> dict[str, Any] | list[Any] | None:
    """A JSON file of the source: a local dir, or a hub id (from the HF cache / the hub)."""
    path = Path(source).expanduser()
    try:
        if path.is_dir():
            f = path / name
            return json.loads(f.read_text()) if f.is_file() else None
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(source, name)).read_text())
    except Exception:  # absent, offline, unreadable: the model does not say
        return None


def read_settings(source: str) -> dict[str, Any]:
    """What the model itself says about pooling, normalisation, prompts and length."""
    found: dict[str, Any] = {}
    modules = _read(source, "modules.json")
    if isinstance(modules, list):
        types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)]
        found["normalize"] = any(t.endswith(".Normalize") for t in types)
        for m in modules:
            if isinstance(m, dict) and str(m.get("type", "")).endswith(".Pooling"):
                cfg = _read(source, f"{m.get('path') or '1_Pooling'}/config.json")
                if isinstance(cfg, dict):
                    for key, pooling in ST_POOLING_KEYS.items():
                        if cfg.get(key):
                            found["pooling"] = pooling
                            break
    st = _read(source, "config_sentence_transformers.json")
    prompts = st.get("prompts") if isinstance(st, dict) else None
    if isinstance(prompts, dict):
        if prompts.get("query"):
            found["query_instruction"] = str(prompts["query"])
        doc = prompts.get("document") or prompts.get("passage")
        if doc:
            found["embed_instruction"] = str(doc)
    bert = _read(source, "sentence_bert_config.json")
    if isinstance(bert, dict) and isinstance(bert.get("max_seq_length"), int):
        found["max_length"] = bert["max_seq_length"]
    return found


def _is_decoder(source: str) -> bool:
    cfg = _read(source, "config.json")
    if not isinstance(cfg, dict):
        return False
    archs = [str(a) for a in cfg.get("architectures") or []]
    return any(a.endswith("ForCausalLM") for a in archs) or cfg.get("model_type") in DECODER_TYPES


def embedding_settings(source: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings to record: the flags', else the model's, else a guess (`guessed` lists
    which were guessed)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - set(SETTINGS)
    if unknown:
        raise OptionError(f"unknown embedding settings: {', '.join(sorted(unknown))}")
    if overrides.get("pooling") not in (None, *POOLINGS):
        raise OptionError(
            f"pooling {overrides['pooling']!r} is not known",
            f"use one of {', '.join(POOLINGS)}",
            param="pooling",
        )
    decoder = _is_decoder(source)
    guess = {"pooling": "last_token" if decoder else "mean", "normalize": True}
    model = read_settings(source)
    out: dict[str, Any] = {**guess, **model, **overrides}
    out["guessed"] = sorted(k for k in guess if k not in model and k not in overrides)
    out["padding_side"] = "left" if out["pooling"] == "last_token" else "right"
    if "max_length" not in out:
        tok = _read(source, "tokenizer_config.json")
        n = tok.get("model_max_length") if isinstance(tok, dict) else None
        if isinstance(n, (int, float)) and 0 < n < MAX_SANE_LENGTH:
            out["max_length"] = int(n)
    return out


def fold_position_ids(ir: Path) -> bool:
    """Compute a decoder's `position_ids` inside the graph, from its attention mask.

    optimum-intel exports most decoders for feature-extraction with a `position_ids` input,
    which openvino-genai's TextEmbeddingPipeline never sets (it feeds input_ids and
    attention_mask only), so the model would read garbage positions. No library does this
    fold, hence by hand: positions = max(cumsum(mask) - 1, 0), right for left and right
    padding. True if the model had the input.
    """
    import os

    xml = ir / "openvino_model.xml"
    tmp = ir / "openvino_model.folded.xml"
    if not _write_folded(xml, tmp):
        return False
    # The weights were memory-mapped from the .bin being replaced: written aside, the model
    # released (the function returned), then renamed over it.
    os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
    os.replace(tmp, xml)
    return True


def _write_folded(xml: Path, out: Path) -> bool:
    import openvino as ov
    from openvino import opset13 as ops

    model = ov.Core().read_model(str(xml))
    names = {i.get_any_name(): i for i in model.inputs}
    if "position_ids" not in names or "attention_mask" not in names:
        return False
    param = names["position_ids"].get_node()
    et = param.get_output_element_type(0)
    mask = ops.convert(names["attention_mask"].get_node().output(0), et)
    cum = ops.cumsum(mask, ops.constant(1, ov.Type.i64))
    positions = ops.maximum(ops.subtract(cum, ops.constant(1, et)), ops.constant(0, et))
    for target in list(param.output(0).get_target_inputs()):
        target.replace_source_output(positions.output(0))
    model.remove_parameter(param)
    model.validate_nodes_and_infer_types()
    ov.save_model(model, str(out), compress_to_fp16=False)
    return True
