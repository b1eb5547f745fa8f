"""Fidelity of an export against its unquantized reference (`ovchat eval`).

On a fixed offline English corpus (the Python documentation text that ships with CPython in
`pydoc_data`), cut into windows: perplexity of the export and of the reference, top-1
next-token agreement, and the mean KL divergence KL(reference ‖ export) of next-token
distributions. The reference is PyTorch fp32 on the export's Hugging Face source (from the
manifest, or the GGUF → HF conversion for a GGUF source); the export runs through
optimum-intel's OVModelForCausalLM with f32 inference precision, an f32 KV cache and no
dynamic activation quantization, so that only the weights differ.

`--recipes` exports the same source with several recipes (cached under
$OVCHAT_HOME/eval) and compares them in one table, with size on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..convert.recipe import Recipe, recipe_label
from ..errors import ModelNotFoundError, OptionError, require
from ..library import resolve
from ..modeldir import EVAL_FILE, KIND_ARTICLE, MANIFEST, dir_size_mb, read_model_info
from ..paths import home
from ..progress import Progress, printer
from .corpus import corpus_windows

DEFAULT_MAX_TOKENS = 4096  # corpus tokens evaluated: a few thousand, a minute on 2 cores
DEFAULT_WINDOW = 512  # tokens per window (cut to the model's context if smaller)
# Only the weights differ: f32 math, f32 KV cache, no int8 activations, no model cache.
EXPORT_PROPERTIES = {
    "INFERENCE_PRECISION_HINT": "f32",
    "KV_CACHE_PRECISION": "f32",
    "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
    "CACHE_DIR": "",
}
# The recipes `--recipes` compares: (label, recipe). optimum-intel's int4 recipe needs the
# fallback for
# models whose widths 128 does not divide (SmolLM2: 576).
RECIPES: tuple[tuple[str, Recipe], ...] = (
    ("int4 sym g128 r0.6 (optimum-intel's, fallback adjust)", Recipe(group_size_fallback="adjust")),
    (
        "int4 asym g64 r1.0",
        Recipe(group_size=64, ratio=1.0, sym=False, group_size_fallback="adjust"),
    ),
    ("int8 asym per-channel", Recipe(weight_format="int8", sym=False)),
    ("fp16", Recipe(weight_format="fp16")),
)
TARGET_PPL_RATIO = 1.10  # default recipe's perplexity within 1.10x of fp16's
TARGET_TOP1 = 0.90

_say = printer("ovchat eval")


# -- the reference ---------------------------------------------------------------------------
def reference_dir(model_dir: Path, reference: str | Path | None, say: Progress = _say) -> Path:
    """The unquantized Hugging Face model an export came from.

    An explicit `reference` wins; else the manifest's source: an HF dir as is, a GGUF
    converted once into $OVCHAT_HOME/reference/, a hub id from the local HF cache.
    """
    if reference:
        p = Path(reference).expanduser()
        if not (p / "config.json").is_file():
            raise ModelNotFoundError(
                f"{p} is not a Hugging Face model dir",
                "check the reference path",
                param="reference",
            )
        return p.resolve()
    manifest = read_model_info(model_dir).manifest
    source = manifest.get("source") or {}
    kind, model = source.get("kind"), str(source.get("model", ""))
    if kind == "dir" and (Path(model) / "config.json").is_file():
        return Path(model)
    if kind == "gguf" and Path(model).is_file():
        from ..convert.gguf import gguf_to_hf

        tag = hashlib.sha1(f"{model}:{source.get('bytes')}".encode()).hexdigest()[:10]
        out = home() / "reference" / f"{Path(model).stem}-{tag}"
        if not (out / "config.json").is_file():
            say(f"converting {Path(model).name} to a Hugging Face reference (once) → {out}")
            out.parent.mkdir(parents=True, exist_ok=True)
            gguf_to_hf(model, out)
        return out
    if kind == "hub":
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(model, local_files_only=True))
        except Exception:
            pass
    raise ModelNotFoundError(
        f"cannot find the unquantized source of {model_dir} (manifest source: {kind} {model})",
        "name the unquantized Hugging Face dir as the reference",
        param="reference",
    )


# -- scoring ---------------------------------------------------------------------------------
@dataclass
class Score:
    """Running sums of one model's scores against the reference."""

    label: str
    path: str
    size_mb: float
    nll: float = 0.0
    agree: int = 0
    kl: float = 0.0
    n: int = 0
    recipe: dict[str, Any] = field(default_factory=dict)

    def add(self, ref_logp: Any, logp: Any, targets: Any) -> None:
        self.nll -= float(logp.gather(-1, targets[:, None]).sum())
        self.agree += int((ref_logp.argmax(-1) == logp.argmax(-1)).sum())
        self.kl += float((ref_logp.exp() * (ref_logp - logp)).sum(-1).clamp_min(0).sum())
        self.n += int(targets.numel())

    def result(self, ref_ppl: float | None) -> dict[str, Any]:
        ppl = math.exp(self.nll / self.n) if self.n else float("nan")
        return {
            "label": self.label,
            "path": self.path,
            "size_mb": round(self.size_mb, 1),
            "perplexity": ppl,
            "ppl_ratio_to_reference": ppl / ref_ppl if ref_ppl else None,
            "top1_agreement": self.agree / self.n if self.n else float("nan"),
            "mean_kl": self.kl / self.n if self.n else float("nan"),
            "tokens": self.n,
            "recipe": self.recipe,
        }


@dataclass
class EvalResult:
    model: str
    reference: str
    corpus: str
    tokens: int
    window: int
    reference_perplexity: float
    reference_size_mb: float
    rows: list[dict[str, Any]]
    notes: list[str]
    targets: dict[str, Any]
    answers: list[dict[str, Any]] = field(default_factory=list)  # answers.py's summaries

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _export_logits(model_dir: Path) -> Callable[[list[int]], Any]:
    import torch
    from optimum.intel.openvino import OVModelForCausalLM

    model = OVModelForCausalLM.from_pretrained(
        str(model_dir), ov_config=dict(EXPORT_PROPERTIES), compile=True
    )

    def run(ids: list[int]) -> Any:
        x = torch.tensor([ids], dtype=torch.int64)
        with torch.no_grad():  # past_key_values=None: optimum resets the model's KV state
            out = model(input_ids=x, attention_mask=torch.ones_like(x))
        return out.logits[0].to(torch.float64)

    return run


def _reference_logits(hf_dir: Path) -> Callable[[list[int]], Any]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()

    def run(ids: list[int]) -> Any:
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids], dtype=torch.int64))
        return out.logits[0].to(torch.float64)

    return run


def _candidates(
    model_dir: Path, ref: Path, recipes: bool, say: Progress
) -> Iterator[tuple[str, Path]]:
    manifest = read_model_info(model_dir).manifest
    asked = (manifest.get("recipe") or {}).get("asked")
    yield f"this export ({recipe_label(asked)})", model_dir
    if not recipes:
        return
    cache = home() / "eval" / f"{model_dir.name}-{hashlib.sha1(str(ref).encode()).hexdigest()[:8]}"
    for label, recipe in RECIPES:
        if asked and asdict(recipe) == asked:
            continue  # this export already is that recipe
        out = cache / label.split(" (")[0].replace(" ", "-").replace(".", "")
        if not (out / MANIFEST).is_file():
            say(f"exporting {label} → {out}")
            from ..convert.export import export

            export(str(ref), out, recipe, force=True, progress=lambda s: None)
        yield label, out


def evaluate(
    model_dir: str | Path | None,
    reference: str | Path | None = None,
    recipes: bool = False,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    window: int = DEFAULT_WINDOW,
    progress: Progress = _say,
) -> EvalResult:
    """Score an export (and with `recipes`, several exports) against the fp32 reference."""
    require("torch", "export", "ovchat eval")
    import torch

    if max_tokens < 2:
        raise OptionError(f"max_tokens must be at least 2, got {max_tokens}", param="max_tokens")
    path = resolve(model_dir)
    if (kind := read_model_info(path).kind) != "chat":
        raise OptionError(
            f"{path.name} is {KIND_ARTICLE[kind]} {kind} model; eval measures chat models' "
            "next-token fidelity",
            param="model_dir",
        )
    ref = reference_dir(path, reference, progress)
    window = max(2, min(window, read_model_info(path).context_length))
    windows = corpus_windows(ref, max_tokens, window)
    progress(f"corpus: {sum(map(len, windows))} tokens of pydoc_data in {len(windows)} windows")
    models: list[tuple[Score, Callable[[list[int]], Any]]] = []
    for label, d in _candidates(path, ref, recipes, progress):
        progress(f"loading {label} (OpenVINO, f32 inference)")
        m = read_model_info(d).manifest
        score = Score(label, str(d), dir_size_mb(d, ("openvino_model.*",)))
        score.recipe = (m.get("recipe") or {}).get("asked") or {}
        models.append((score, _export_logits(d)))
    progress(f"loading the reference {ref} (PyTorch fp32)")
    ref_run = _reference_logits(ref)
    ref_score = Score("reference", str(ref), dir_size_mb(ref, ("*.safetensors", "*.bin")))
    torch.set_grad_enabled(False)
    for i, ids in enumerate(windows, 1):
        targets = torch.tensor(ids[1:], dtype=torch.int64)
        ref_logp = torch.log_softmax(ref_run(ids)[:-1], -1)
        ref_score.add(ref_logp, ref_logp, targets)
        for score, run in models:
            score.add(ref_logp, torch.log_softmax(run(ids)[:-1], -1), targets)
        progress(f"window {i}/{len(windows)}")
    ref_ppl = math.exp(ref_score.nll / ref_score.n)
    rows = [score.result(ref_ppl) for score, _ in models]
    return EvalResult(
        model=str(path),
        reference=str(ref),
        corpus=f"CPython {sys.version.split()[0]} pydoc_data.topics (sorted keys)",
        tokens=ref_score.n,
        window=window,
        reference_perplexity=ref_ppl,
        reference_size_mb=round(ref_score.size_mb, 1),
        rows=rows,
        notes=[
            "reference: PyTorch fp32 on the HF source; exports: OpenVINO CPU through "
            "OVModelForCausalLM with " + ", ".join(f"{k}={v or '(none)'}" for k, v in
            EXPORT_PROPERTIES.items()) + ", so only the weights differ",
            "KL is KL(reference || export) per next token, in nats, averaged over tokens",
        ],
        targets=_targets(rows),
    )  # fmt: skip


def record(result: EvalResult) -> Path | None:
    """Keep the result next to the export (`ovchat show` reports it); None if it is not
    writable (an export someone else owns is still evaluated)."""
    path = Path(result.model) / EVAL_FILE
    try:
        path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    except OSError:
        return None
    return path


def _targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The default recipe against fp16: perplexity ratio and top-1 agreement (reported only)."""
    fp16 = next((r for r in rows if r["recipe"].get("weight_format") == "fp16"), None)
    default = rows[0] if rows else None
    if not fp16 or not default:
        return {}
    ratio = default["perplexity"] / fp16["perplexity"]
    return {
        "ppl_ratio_to_fp16": ratio,
        "ppl_ratio_target": TARGET_PPL_RATIO,
        "ppl_met": ratio <= TARGET_PPL_RATIO,
        "top1_agreement": default["top1_agreement"],
        "top1_target": TARGET_TOP1,
        "top1_met": default["top1_agreement"] >= TARGET_TOP1,
    }
