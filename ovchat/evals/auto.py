"""`ovchat export --recipe auto`: the fastest faithful recipe for this machine. Each
candidate is exported, scored against the unquantized reference with eval's fidelity measures
on a small budget (perplexity ratio, top-1 agreement), and, if it meets the bounds, its decode
speed is measured here, as served (evals/speed.py: the Engine's own properties, a short bounded
decode, median of 3); the fastest of those that meet the bounds is kept. The manifest records
the CPU (model, ISA flags, class), every candidate's fidelity and speed, the choice and why.

The list (RECIPES; a GGUF source tries its own blocks first):
  gguf    the GGUF's own blocks (GGUF sources only; no re-quantization)
  int4    optimum-intel's int4 recipe: sym, groups of 128, 60% of the layers int4 (data-free)
  int4    asym, groups of 64, AWQ + scale estimation on calibration text (`--dataset`)
  mixed   int4 asym g64 on half the layers, chosen by Hessian-weighted sensitivity, the
          rest int8; AWQ + scale estimation (`--dataset`)
  int8    asym per channel (data-free)
  fp16    no compression (always within any bound a reference can meet)
Each candidate is exported next to the output and removed unless kept; the reference is the
one `ovchat eval` uses (the source, or a GGUF's dequantized conversion, cached). Speed is
measured only for candidates within the bounds: a format that is not faithful is not kept,
however fast.
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
from .speed import cpu_info, decode_speed

DEFAULT_MAX_PPL_RATIO = 1.05
DEFAULT_MIN_TOP1 = 0.90
AUTO_MAX_TOKENS = 1024  # corpus tokens per candidate: the small budget
AUTO_WINDOW = 512
CALIBRATION_SAMPLES = 64  # nncf's samples for AWQ / scale estimation (fewer: faster)
_say = printer("ovchat export")


def candidate_key(recipe: Recipe) -> str:
    """The short name of a candidate (CANDIDATE_KEYS), as `candidates(only=...)` takes it."""
    if recipe.weight_format != "int4":
        return recipe.weight_format
    if recipe.sensitivity_metric:
        return "mixed"
    return "int4-awq" if recipe.awq else "int4"


CANDIDATE_KEYS = (GGUF_FORMAT, "int4", "int4-awq", "mixed", "int8", "fp16")


def candidates(
    source_is_gguf: bool, dataset: str, base: Recipe, only: list[str] | None = None
) -> list[tuple[str, Recipe]]:
    """The recipes to try, fastest first by assumption (task and trust_remote_code from
    `base`); `only`: those of these CANDIDATE_KEYS (fewer candidates: less time)."""
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
    if only is None:
        return out
    unknown = [k for k in only if k not in CANDIDATE_KEYS]
    if unknown or not only:
        raise OptionError(
            f"unknown candidate {', '.join(unknown)}" if unknown else "no candidate named",
            f"name some of {', '.join(CANDIDATE_KEYS)}",
            param="candidates",
        )
    if GGUF_FORMAT in only and not source_is_gguf:
        raise OptionError("the gguf candidate needs a .gguf source", param="candidates")
    return [(label, r) for label, r in out if candidate_key(r) in only]


@dataclass
class AutoResult:
    path: Path
    chosen: str
    met: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    bounds: dict[str, float] = field(default_factory=dict)
    why: str = ""
    cpu: dict[str, Any] = field(default_factory=dict)


def choose(rows: list[dict[str, Any]]) -> tuple[int, str]:
    """Which row to keep, and why: the fastest decode (median tokens/s) among the rows that
    meet the bounds; when none does, the most faithful (lowest perplexity ratio)."""
    met = [i for i, r in enumerate(rows) if r["met"] and r.get("decode_tok_s") is not None]
    if met:
        best = max(met, key=lambda i: rows[i]["decode_tok_s"])
        others = ", ".join(f"{rows[i]['recipe']} {rows[i]['decode_tok_s']:.1f}"
                           for i in met if i != best)  # fmt: skip
        why = (f"the fastest of the {len(met)} within the bounds: "
               f"{rows[best]['decode_tok_s']:.1f} tokens/s decode here"
               + (f" (others: {others})" if others else ""))  # fmt: skip
        return best, why
    best = min(range(len(rows)), key=lambda i: (rows[i]["ppl_ratio"], -rows[i]["top1"]))
    return best, "none met the bounds: the most faithful (lowest perplexity ratio) kept"


SpeedMeter = Callable[[Path], dict[str, Any]]


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
    measure_speed: SpeedMeter = decode_speed,
    why: str | None = None,
    only: list[str] | None = None,
) -> AutoResult:
    """Export `model` with the fastest recipe (decode speed measured here) whose perplexity
    is within `max_ppl_ratio` of the reference's and whose top-1 agreement is at least
    `min_top1` (none: the most faithful). `measure_speed(dir)` measures one candidate
    (evals/speed.py's decode_speed; a dict with "tokens_per_second"); `only`: the
    CANDIDATE_KEYS to try (`recipes`: an explicit list instead); `why` goes in the manifest."""
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
    is_gguf = model.lower().endswith(".gguf")
    todo = recipes or candidates(is_gguf, dataset, base or Recipe(), only)
    scratch = out.parent / f".{out.name}.auto"
    rows: list[dict[str, Any]] = []
    dirs: dict[int, Path] = {}  # the candidates still on disk: the best so far only
    cpu = cpu_info()
    try:
        for i, (label, recipe) in enumerate(todo):
            n = f"recipe {i + 1}/{len(todo)}: {label}"
            progress(f"{n}: exporting")
            t0 = time.perf_counter()
            d = export(model, scratch / f"r{i}", recipe, force=True, name=name,
                       generation=generation, progress=lambda s: None, why=why)  # fmt: skip
            seconds = time.perf_counter() - t0
            progress(f"{n}: scoring against the reference")
            t1 = time.perf_counter()
            r = evaluate(d, None, max_tokens=max_tokens, window=window, progress=lambda s: None)
            (m,) = r.rows
            met = m["ppl_ratio_to_reference"] <= max_ppl_ratio and m["top1_agreement"] >= min_top1
            row: dict[str, Any] = {
                "recipe": label,
                "size_mb": m["size_mb"],
                "ppl_ratio": round(m["ppl_ratio_to_reference"], 4),
                "top1": round(m["top1_agreement"], 4),
                "mean_kl": round(m["mean_kl"], 5),
                "export_seconds": round(seconds, 1),
                "eval_seconds": round(time.perf_counter() - t1, 1),
                "met": met,
                "tokens": m["tokens"],
                "decode_tok_s": None,
                "decode": None,
            }
            if met:
                progress(f"{n}: within the bounds; measuring decode speed here")
                speed = measure_speed(d)
                row["decode"] = speed
                row["decode_tok_s"] = speed["tokens_per_second"]
            rows.append(row)
            dirs[i] = d
            on_row(row)
            tps = f", {row['decode_tok_s']:.1f} tokens/s" if met else ""
            progress(f"{n}: ppl {row['ppl_ratio']:.3f}x, top-1 {row['top1']:.3f}, "
                     f"{row['size_mb']:.0f} MB{tps} → "
                     f"{'within the bounds' if met else 'does not meet the bounds'}")  # fmt: skip
            best, _ = choose(rows)
            for j in [j for j in dirs if j != best]:  # only the best so far stays on disk
                shutil.rmtree(dirs.pop(j), ignore_errors=True)
        best, reason = choose(rows)
        kept, chosen = dirs[best], rows[best]
        manifest = json.loads((kept / MANIFEST).read_text())
        bounds = {"max_ppl_ratio": max_ppl_ratio, "min_top1": min_top1, "tokens": max_tokens}
        manifest["recipe"]["auto"] = {
            "bounds": bounds,
            "cpu": cpu,
            "tried": rows,
            "chosen": chosen["recipe"],
            "why": reason,
            "measured": time.strftime("%Y-%m-%d"),
        }
        (kept / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        kept.rename(out)
        return AutoResult(out, chosen["recipe"], bool(chosen["met"]), rows, bounds, reason, cpu)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
