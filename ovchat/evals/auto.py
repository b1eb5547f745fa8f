"""`ovchat export --recipe auto`: try recipes from the fastest to the most faithful, score
each against the unquantized reference with eval's fidelity measures on a small budget, keep
the first that meets the bounds.

The list (RECIPES; a GGUF source tries its own blocks first):
  gguf    the GGUF's own Q4_0/Q4_1/Q8_0 blocks (GGUF sources only; no re-quantization)
  int4    optimum-intel's int4 recipe: sym, groups of 128, 60% of the layers int4 (data-free)
  int4    asym, groups of 64, AWQ + scale estimation on calibration text (`--dataset`)
  mixed   int4 asym g64 on half the layers, chosen by Hessian-weighted sensitivity, the
          rest int8; AWQ + scale estimation (`--dataset`)
  int8    asym per channel (data-free)
  fp16    no compression (always within any bound a reference can meet)
Each candidate is exported next to the output and removed unless kept; the reference is the
one `ovchat eval` uses (the source, or a GGUF's dequantized conversion, cached).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..convert.calib import BUILTIN
from ..convert.recipe import GGUF_FORMAT, Recipe
from ..errors import OptionError, require
from ..modeldir import MANIFEST
from ..progress import Progress, printer

DEFAULT_MAX_PPL_RATIO = 1.05
DEFAULT_MIN_TOP1 = 0.90
AUTO_MAX_TOKENS = 1024  # corpus tokens per candidate: the small budget
AUTO_WINDOW = 512
CALIBRATION_SAMPLES = 64  # nncf's samples for AWQ / scale estimation (fewer: faster)
_say = printer("ovchat export")


def candidates(source_is_gguf: bool, dataset: str, base: Recipe) -> list[tuple[str, Recipe]]:
    """The recipes to try, fastest first (task and trust_remote_code from `base`)."""
    common: dict[str, Any] = {"task": base.task, "trust_remote_code": base.trust_remote_code}
    data: dict[str, Any] = {"dataset": dataset, "awq": True, "scale_estimation": True,
            "num_samples": CALIBRATION_SAMPLES}  # fmt: skip
    g64: dict[str, Any] = {"group_size": 64, "sym": False, "group_size_fallback": "adjust"}
    out = [
        ("int4 sym g128 r0.6 (optimum-intel's)", Recipe(group_size_fallback="adjust", **common)),
        (f"int4 asym g64, AWQ + scale estimation on {dataset}",
         Recipe(ratio=1.0, **g64, **data, **common)),
        (f"int4/int8 mixed r0.5 by hessian, AWQ + SE on {dataset}",
         Recipe(ratio=0.5, sensitivity_metric="hessian_input_activation", **g64, **data,
                **common)),
        ("int8 asym per channel", Recipe(weight_format="int8", sym=False, **common)),
        ("fp16", Recipe(weight_format="fp16", **common)),
    ]  # fmt: skip
    if source_is_gguf:
        out.insert(0, ("gguf: the GGUF's own blocks", Recipe(weight_format=GGUF_FORMAT, **common)))
    return out


@dataclass
class AutoResult:
    path: Path
    chosen: str
    met: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    bounds: dict[str, float] = field(default_factory=dict)


def export_auto(
    model: str,
    output_dir: str | Path,
    *,
    max_ppl_ratio: float = DEFAULT_MAX_PPL_RATIO,
    min_top1: float = DEFAULT_MIN_TOP1,
    dataset: str = BUILTIN,
    base: Recipe | None = None,
    recipes: list[tuple[str, Recipe]] | None = None,
    max_tokens: int = AUTO_MAX_TOKENS,
    window: int = AUTO_WINDOW,
    force: bool = False,
    name: str | None = None,
    generation: dict[str, Any] | None = None,
    progress: Progress = _say,
    on_row: Callable[[dict[str, Any]], None] = lambda row: None,
) -> AutoResult:
    """Export `model` with the first recipe whose perplexity is within `max_ppl_ratio` of the
    reference's and whose top-1 agreement is at least `min_top1` (none: the last tried)."""
    require("torch", "export", "choosing a recipe by measurement")
    from ..convert.export import _check_output, export
    from .fidelity import evaluate

    if not max_ppl_ratio >= 1.0:
        raise OptionError(f"max ppl ratio must be >= 1, got {max_ppl_ratio}", param="max_ppl_ratio")
    if not 0.0 <= min_top1 <= 1.0:
        raise OptionError(f"min top-1 must be in [0, 1], got {min_top1}", param="min_top1")
    out = Path(output_dir).expanduser().absolute()
    local = Path(model).expanduser()
    _check_output(out, local.absolute() if local.exists() else None, force)
    todo = recipes or candidates(model.lower().endswith(".gguf"), dataset, base or Recipe())
    scratch = out.parent / f".{out.name}.auto"
    rows: list[dict[str, Any]] = []
    kept: Path | None = None
    try:
        for i, (label, recipe) in enumerate(todo):
            progress(f"recipe {i + 1}/{len(todo)}: {label}: exporting")
            t0 = time.perf_counter()
            d = export(model, scratch / f"r{i}", recipe, force=True, name=name,
                       generation=generation, progress=lambda s: None)  # fmt: skip
            seconds = time.perf_counter() - t0
            r = evaluate(d, None, max_tokens=max_tokens, window=window, progress=lambda s: None)
            (m,) = r.rows
            met = m["ppl_ratio_to_reference"] <= max_ppl_ratio and m["top1_agreement"] >= min_top1
            row = {
                "recipe": label,
                "size_mb": m["size_mb"],
                "ppl_ratio": round(m["ppl_ratio_to_reference"], 4),
                "top1": round(m["top1_agreement"], 4),
                "mean_kl": round(m["mean_kl"], 5),
                "export_seconds": round(seconds, 1),
                "met": met,
                "tokens": m["tokens"],
            }
            rows.append(row)
            on_row(row)
            progress(f"recipe {i + 1}/{len(todo)}: {label}: ppl {row['ppl_ratio']:.3f}x, top-1 "
                     f"{row['top1']:.3f}, {row['size_mb']:.0f} MB → "
                     f"{'kept' if met else 'does not meet the bounds'}")  # fmt: skip
            if kept is not None:
                shutil.rmtree(kept, ignore_errors=True)
            kept = d
            if met:
                break
        assert kept is not None
        chosen = rows[-1]
        manifest = json.loads((kept / MANIFEST).read_text())
        bounds = {"max_ppl_ratio": max_ppl_ratio, "min_top1": min_top1, "tokens": max_tokens}
        manifest["recipe"]["auto"] = {"bounds": bounds, "tried": rows, "chosen": chosen["recipe"]}
        (kept / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        kept.rename(out)
        return AutoResult(out, chosen["recipe"], bool(chosen["met"]), rows, bounds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
