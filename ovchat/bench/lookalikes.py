"""Random-weight models with the exact shape of real ones, for `ovchat bench --shape`.

Speed does not depend on weight values, only on shapes and dtypes: a model with a real
model's config (widths, layers, heads, vocab) and seeded random weights decodes at the real
one's speed, with no download. The tokenizer is SmolLM2's (from the default model's GGUF)
padded with unreachable entries up to the real vocab size, so embedding and lm_head cost
what they really cost; llama.cpp's converter recognises it as SmolLM2's.

Built once into ovchat's cache (`<home>/shapes/NAME/`), each step atomic and timed:
hf/ (bf16 safetensors) → ov-optimum/ and ov-fast/ (OpenVINO int4 exports) → Q4_0.gguf and
Q4_K_M.gguf (llama.cpp's converter and quantizer, see gguf_tools.py).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..convert.recipe import Recipe
from ..errors import OptionError
from ..paths import file_lock, home
from ..progress import Progress, printer

SEED = 0
INIT_STD = 0.02  # like the models' initializer_range: sane logits (std ~0.6)
SHARD_BYTES = 2 << 30  # peak RAM while writing ~ one shard
SLICE_BYTES = 64 << 20  # fp32 random numbers are drawn in slices of this size
GGUF_TYPES = ("Q4_0", "Q4_K_M")
FALLBACK = "adjust"  # widths no group size divides (Qwen's 896 = 7·128) are adjusted


# The recipes a shape is exported with: optimum-intel's int4 recipe (int4 sym g128, 60 %
# int4, int8 backup and int8 embedding/lm_head) and the fastest found (every matmul int4 sym
# g128; with DYNAMIC_QUANTIZATION_GROUP_SIZE = 128, which the engine applies to both, see
# engine/runtime.py). README "Speed" has the measurements.
RECIPES: dict[str, Recipe] = {
    "optimum": Recipe(group_size_fallback=FALLBACK),
    "fast": Recipe(ratio=1.0, all_layers=True, group_size_fallback=FALLBACK),
}

_QWEN2 = {
    "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_act": "silu",
    "vocab_size": 151936, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
    "max_position_embeddings": 32768, "sliding_window": 32768, "use_sliding_window": False,
    "tie_word_embeddings": True,
}  # fmt: skip
_LLAMA32 = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_act": "silu",
    "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "max_position_embeddings": 131072, "tie_word_embeddings": True,
}  # fmt: skip


@dataclass(frozen=True)
class ModelShape:
    name: str
    real: str  # the model whose config this is
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> int:
        c = self.config
        h, inter, layers, vocab = (c["hidden_size"], c["intermediate_size"],
                                   c["num_hidden_layers"], c["vocab_size"])  # fmt: skip
        hd = c.get("head_dim") or h // c["num_attention_heads"]
        q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
        layer = 2 * h * q + 2 * h * kv + 3 * h * inter + 2 * h
        return layers * layer + vocab * h * (1 if c.get("tie_word_embeddings") else 2) + h


# Values from each model's own config.json. 3B-class shapes are left out: exporting them
# peaks at ~13-15 GB of RAM (0.5B: 3.1 GB, 1B: 5.5 GB, 1.5B: 6.0 GB).
SHAPES: dict[str, ModelShape] = {
    s.name: s
    for s in (
        ModelShape("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B-Instruct", {
            **_QWEN2, "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
            "num_attention_heads": 14, "num_key_value_heads": 2}),
        ModelShape("llama-3.2-1b", "meta-llama/Llama-3.2-1B-Instruct", {
            **_LLAMA32, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
            "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64}),
        ModelShape("qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B-Instruct", {
            **_QWEN2, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
            "num_attention_heads": 12, "num_key_value_heads": 2}),
    )
}  # fmt: skip


def get_shape(name_or_file: str) -> ModelShape:
    """A known shape by name, or one described by a JSON file {"name", "real", "config"}."""
    if name_or_file in SHAPES:
        return SHAPES[name_or_file]
    path = Path(name_or_file).expanduser()
    if path.suffix == ".json" and path.is_file():
        try:
            d = json.loads(path.read_text())
            return ModelShape(str(d["name"]), str(d.get("real", "custom")), dict(d["config"]))
        except (ValueError, KeyError, TypeError) as e:
            raise OptionError(f"{path} is not a shape file: {e}", param="shape") from e
    raise OptionError(
        f"unknown shape {name_or_file!r}",
        f"use one of {', '.join(SHAPES)} or a JSON file with name and config",
        param="shape",
    )


@dataclass(frozen=True)
class ShapeModels:
    """Where a built shape's models are, and how long each step took to build."""

    shape: ModelShape
    root: Path

    @property
    def hf(self) -> Path:
        return self.root / "hf"

    def ov(self, recipe: str) -> Path:
        return self.root / f"ov-{recipe}"

    def gguf(self, qtype: str) -> Path:
        return self.root / f"{qtype}.gguf"

    @property
    def build_seconds(self) -> dict[str, float]:
        f = self.root / "build.json"
        return json.loads(f.read_text()) if f.is_file() else {}


def variants(m: ShapeModels) -> list[Any]:
    """The engines `ovchat bench --shape` compares: ovchat on the fast and on the optimum-intel
    recipe's export (both with the engine's runtime defaults), llama.cpp on Q4_0 and Q4_K_M."""
    from .runner import Variant

    return [
        Variant("ovchat", "ovchat", model_dir=str(m.ov("fast"))),
        Variant("ovchat-optimum-recipe", "ovchat", model_dir=str(m.ov("optimum"))),
        *(Variant(f"llamacpp-{q.lower()}", "llamacpp", gguf=str(m.gguf(q))) for q in GGUF_TYPES),
    ]


def shapes_dir() -> Path:
    return home() / "shapes"


def prepare(shape: ModelShape, progress: Progress | None = None, gguf: bool = True) -> ShapeModels:
    """Build what is missing of `shape`'s models (HF dir, both OV exports, the GGUFs)."""
    from ..convert.export import export
    from .gguf_tools import hf_to_gguf, quantize_gguf

    say = progress or printer("ovchat bench")
    m = ShapeModels(shape, shapes_dir() / shape.name)
    m.root.mkdir(parents=True, exist_ok=True)
    with file_lock(m.root / ".lock"):
        times = m.build_seconds

        def step(key: str, out: Path, what: str, build: Callable[[], Any]) -> None:
            if out.exists():
                return
            say(f"{shape.name}: {what}")
            t = time.perf_counter()
            build()
            times[key] = round(time.perf_counter() - t, 1)
            (m.root / "build.json").write_text(json.dumps(times, indent=2) + "\n")
            say(f"{shape.name}: {key} done in {times[key]:.0f}s")

        step("hf", m.hf, f"writing random weights ({shape.params / 1e9:.2f} B parameters)",
             partial(write_random_model, shape, m.hf))  # fmt: skip
        for name, recipe in RECIPES.items():
            step(f"ov-{name}", m.ov(name), f"exporting with the {name} recipe ({recipe.label()})",
                 partial(export, str(m.hf), m.ov(name), recipe, name=f"{shape.name}-{name}",
                         progress=say))  # fmt: skip
        if gguf:
            f16 = m.root / "model-f16.gguf"
            for q in GGUF_TYPES:
                if not m.gguf(q).exists() and not f16.exists():
                    step("gguf-f16", f16, "converting to GGUF f16 (llama.cpp's converter)",
                         partial(hf_to_gguf, m.hf, f16))  # fmt: skip
                step(f"gguf-{q}", m.gguf(q), f"quantizing to {q} (llama.cpp)",
                     partial(quantize_gguf, f16, m.gguf(q), q))  # fmt: skip
            f16.unlink(missing_ok=True)  # only the quantized files are benchmarked
    return m


def padded_tokenizer(vocab_size: int) -> tuple[Any, dict[str, int | None]]:
    """SmolLM2's BPE tokenizer padded to `vocab_size` entries; its bos/eos/pad ids.

    The padding entries ("<pad_N>", normal tokens) have no merges, so no text maps to them,
    but every id the model can emit decodes."""
    from ..convert.gguf import build_tokenizer, read_metadata
    from ..library.default import default_gguf

    meta = read_metadata(default_gguf())
    tokens = list(meta["tokenizer.ggml.tokens"])
    if vocab_size < len(tokens):
        raise OptionError(
            f"vocab_size {vocab_size} is smaller than SmolLM2's {len(tokens)}", param="shape"
        )
    types = list(meta.get("tokenizer.ggml.token_type", [1] * len(tokens)))
    meta["tokenizer.ggml.tokens"] = tokens + [f"<pad_{i}>" for i in range(len(tokens), vocab_size)]
    meta["tokenizer.ggml.token_type"] = types + [1] * (vocab_size - len(tokens))
    ids = {k: meta.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "padding")}
    return build_tokenizer(meta), ids


def write_random_model(shape: ModelShape, out: Path, dtype: str = "bfloat16") -> Path:
    """An HF model dir with `shape`'s config and seeded N(0, 0.02) weights (norms 1, biases
    0), written tensor by tensor in shards: peak RAM is about one shard, never the model."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    tok, ids = padded_tokenizer(shape.config["vocab_size"])
    cfg_dict = {**shape.config, "torch_dtype": dtype, "bos_token_id": ids["bos"],
                "eos_token_id": ids["eos"], "pad_token_id": ids["padding"]}  # fmt: skip
    cfg = AutoConfig.for_model(cfg_dict.pop("model_type"), **cfg_dict)
    with torch.device("meta"):
        names = [(k, tuple(v.shape)) for k, v in AutoModelForCausalLM.from_config(cfg)
                 .state_dict().items()]  # fmt: skip
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _write_weights(names, bool(cfg.tie_word_embeddings), getattr(torch, dtype), work)
    cfg.save_pretrained(work)
    GenerationConfig(bos_token_id=ids["bos"], eos_token_id=ids["eos"],
                     pad_token_id=ids["padding"]).save_pretrained(work)  # fmt: skip
    tok.save_pretrained(work)
    meta = {**asdict(shape), "params": shape.params, "seed": SEED, "std": INIT_STD}
    (work / "shape.json").write_text(json.dumps(meta, indent=2) + "\n")
    work.rename(out)
    return out


def _write_weights(names: list[tuple[str, tuple[int, ...]]], tied: bool, dtype: Any,
                   out: Path) -> None:  # fmt: skip
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(SEED)
    shards: list[dict[str, Any]] = [{}]
    size = 0
    files: dict[str, str] = {}

    def flush() -> None:
        if shards[-1]:
            fn = f"model-{len(files) + 1:05d}.safetensors"
            save_file(shards[-1], str(out / fn), metadata={"format": "pt"})
            files.update(dict.fromkeys(shards[-1], fn))
            shards[-1] = {}

    for key, shp in names:
        if tied and key == "lm_head.weight":
            continue
        if key.endswith("norm.weight"):
            t = torch.ones(shp, dtype=dtype)
        elif key.endswith(".bias"):
            t = torch.zeros(shp, dtype=dtype)
        else:
            t = torch.empty(shp, dtype=dtype)
            rows = max(1, SLICE_BYTES // 4 // max(1, t[0].numel() if t.dim() > 1 else 1))
            for r in range(0, shp[0], rows):
                n = min(rows, shp[0] - r)
                t[r : r + n] = torch.randn((n, *shp[1:]), generator=gen).mul_(INIT_STD).to(dtype)
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            flush()
            size = 0
        shards[-1][key] = t
        size += nbytes
    flush()
    if len(set(files.values())) == 1:
        (out / next(iter(files.values()))).rename(out / "model.safetensors")
        return
    total = sum((out / f).stat().st_size for f in set(files.values()))
    index = {"metadata": {"total_size": total}, "weight_map": files}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
