"""`ovchat export`: a Hugging Face id, HF dir or .gguf → an OpenVINO IR dir (int4 by default,
optimum-intel's int4 recipe: symmetric, groups of 128, ratio 0.6; int8 for embedding models;
for a .gguf source the GGUF's own quantized blocks, weight format gguf: docs/gguf.md)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..convert.embedding import POOLINGS
from ..convert.recipe import (
    DEFAULT_GROUP_SIZE,
    DEFAULT_RATIO,
    DEFAULT_SYM,
    DEFAULT_TASK,
    DEFAULT_WEIGHT_FORMAT,
    FALLBACKS,
    GGUF_FORMAT,
    WEIGHT_FORMATS,
    Recipe,
)
from ..evals.auto import CANDIDATE_KEYS, DEFAULT_MAX_PPL_RATIO, DEFAULT_MIN_TOP1
from ..modeldir import EMBEDDING_TASKS, RERANK_TASKS, SPEECH_TASKS

if TYPE_CHECKING:
    from ..evals.auto import AutoResult

# Embedding models lose more to int4 than chat models do; int8 keeps them close (README).
DEFAULT_EMBEDDING_WEIGHT_FORMAT = "int8"
FLAGS = {
    "force": "--force",
    "output_dir": "OUTPUT_DIR",
    "group_size": "--group-size",
    "group_size_fallback": "--group-size-fallback",
    "ratio": "--ratio",
    "weight_format": "--weight-format",
    "task": "--task",
    "pooling": "--pooling",
    "dataset": "--dataset",
    "max_ppl_ratio": "--max-ppl-ratio",
    "min_top1": "--min-top1",
    "candidates": "--candidates",
}
SENSITIVITY_METRICS = ("hessian_input_activation", "mean_activation_variance",
                       "max_activation_variance", "mean_activation_magnitude",
                       "weight_quantization_error")  # fmt: skip


def add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    """The export options, shared by `export` and `pull` (they mirror optimum-cli's)."""
    p.add_argument(
        "--weight-format",
        choices=WEIGHT_FORMATS,
        help=f"weight precision (default {DEFAULT_WEIGHT_FORMAT}; {GGUF_FORMAT} for a .gguf "
        f"source: its own quantized blocks, no re-quantization; "
        f"{DEFAULT_EMBEDDING_WEIGHT_FORMAT} for embedding models)",
    )
    p.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE)
    p.add_argument("--ratio", type=float, default=DEFAULT_RATIO)
    sym = p.add_mutually_exclusive_group()
    sym.add_argument("--sym", dest="sym", action="store_true", default=DEFAULT_SYM)
    sym.add_argument("--asym", dest="sym", action="store_false")
    p.add_argument("--group-size-fallback", choices=FALLBACKS, default=None)
    p.add_argument(
        "--all-layers",
        action="store_true",
        help="int4 for the embedding and lm_head too (fastest decode; README Speed)",
    )
    p.add_argument(
        "--task",
        default=DEFAULT_TASK,
        help=f"optimum task ({DEFAULT_TASK}; feature-extraction: an embedding model; "
        "text-classification: a reranker; automatic-speech-recognition-with-past: Whisper)",
    )
    p.add_argument("--trust-remote-code", action="store_true")
    data = p.add_argument_group("data-aware int4 (need --dataset)")
    data.add_argument(
        "--dataset",
        help="calibration text: a text file (paragraphs separated by blank lines, or a JSON "
        "list of strings), builtin (offline prose and chat requests, never eval's) or auto "
        "(text the model generates); used by --awq, --scale-estimation, --gptq and "
        "--sensitivity-metric, and by --recipe auto",
    )
    data.add_argument("--awq", action="store_true", help="activation-aware weight quantization")
    data.add_argument("--scale-estimation", action="store_true")
    data.add_argument("--gptq", action="store_true")
    data.add_argument("--sensitivity-metric", choices=SENSITIVITY_METRICS,
                      help="which layers stay int8 when --ratio < 1")  # fmt: skip
    data.add_argument("--num-samples", type=int, help="calibration samples nncf uses")
    emb = p.add_argument_group("embedding models (--task feature-extraction)")
    emb.add_argument(
        "--pooling", choices=POOLINGS, help="default: the model's own (sentence-transformers)"
    )
    norm = emb.add_mutually_exclusive_group()
    norm.add_argument(
        "--normalize",
        dest="normalize",
        action="store_true",
        default=None,
        help="L2-normalise the vectors (default: the model's own, else yes)",
    )
    norm.add_argument("--no-normalize", dest="normalize", action="store_false")
    emb.add_argument("--query-instruction", help="text put before queries")
    emb.add_argument("--embed-instruction", help="text put before documents")
    emb.add_argument("--max-length", type=int, help="longest input in tokens")
    emb.add_argument(
        "--matryoshka",
        action="store_true",
        default=None,
        help="the model was trained so that its vectors may be cut shorter (allows dimensions)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing export")


def recipe_from_args(
    args: argparse.Namespace, weight_format: str | None = None, source: str | None = None
) -> Recipe:
    """The Recipe the flags ask for; `weight_format` is the default when none was given
    (then: gguf for a .gguf `source`, int8 for embedding, rerank and speech models, else
    optimum-intel's int4 recipe)."""
    embeds = args.task.startswith(EMBEDDING_TASKS + RERANK_TASKS + SPEECH_TASKS)
    fmt = args.weight_format or weight_format
    int4_asked = (args.group_size, args.ratio, args.sym) != (
        DEFAULT_GROUP_SIZE,
        DEFAULT_RATIO,
        DEFAULT_SYM,
    ) or bool(
        args.awq or args.scale_estimation or args.gptq or args.sensitivity_metric or args.all_layers
    )
    gguf = source is not None and source.lower().endswith(".gguf")
    if fmt is None and gguf and not embeds and not int4_asked:
        fmt = GGUF_FORMAT  # int4 options given: the user asked to re-quantize
    fmt = fmt or (DEFAULT_EMBEDDING_WEIGHT_FORMAT if embeds else DEFAULT_WEIGHT_FORMAT)
    return Recipe(
        weight_format=fmt,
        group_size=args.group_size,
        ratio=args.ratio,
        sym=args.sym,
        group_size_fallback=args.group_size_fallback,
        task=args.task,
        trust_remote_code=args.trust_remote_code,
        dataset=args.dataset,
        awq=args.awq,
        scale_estimation=args.scale_estimation,
        gptq=args.gptq,
        sensitivity_metric=args.sensitivity_metric,
        num_samples=args.num_samples,
        all_layers=args.all_layers,
    )


def embedding_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    """The embedding settings given as flags (None: none given)."""
    given = {
        "pooling": args.pooling,
        "normalize": args.normalize,
        "query_instruction": args.query_instruction,
        "embed_instruction": args.embed_instruction,
        "max_length": args.max_length,
        "matryoshka": args.matryoshka,
    }
    given = {k: v for k, v in given.items() if v is not None}
    return given or None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="Hugging Face id, local HF model dir, or .gguf file")
    p.add_argument("output_dir", help="where to write the OpenVINO model")
    add_recipe_arguments(p)
    p.add_argument("--name", help="model name recorded in the manifest")
    add_auto_arguments(p)


def add_auto_arguments(p: argparse.ArgumentParser) -> None:
    """--recipe auto and its bounds, shared by `export` and `pull`."""
    auto = p.add_argument_group("choosing the recipe by measurement")
    auto.add_argument(
        "--recipe",
        choices=("auto",),
        help="auto: export each candidate recipe, score it against the reference, measure "
        "the decode speed here of those that meet --max-ppl-ratio and --min-top1, keep the "
        "fastest of them (docs: Choosing a recipe)",
    )
    auto.add_argument(
        "--candidates",
        type=lambda v: [k.strip() for k in v.split(",") if k.strip()],
        help=f"with --recipe auto: only these, comma-separated ({', '.join(CANDIDATE_KEYS)}; "
        "default all that apply: fewer is quicker)",
    )
    auto.add_argument("--max-ppl-ratio", type=float, default=DEFAULT_MAX_PPL_RATIO,
                      help="perplexity at most this times the reference's")  # fmt: skip
    auto.add_argument("--min-top1", type=float, default=DEFAULT_MIN_TOP1,
                      help="top-1 agreement with the reference at least this")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from ..convert.export import export

    if args.recipe == "auto":
        return _auto(args)

    out = export(
        args.model,
        args.output_dir,
        recipe_from_args(args, source=args.model),
        force=args.force,
        name=args.name,
        embedding=embedding_from_args(args),
    )
    print(out)
    return 0


def _auto(args: argparse.Namespace) -> int:
    from ..convert.calib import BUILTIN
    from ..evals.auto import export_auto

    r = export_auto(
        args.model, args.output_dir, max_ppl_ratio=args.max_ppl_ratio, min_top1=args.min_top1,
        dataset=args.dataset or BUILTIN, base=recipe_from_args(args), force=args.force,
        name=args.name, only=args.candidates,
    )  # fmt: skip
    print_auto(r, args.max_ppl_ratio, args.min_top1)
    print(r.path)
    return 0


def auto_exporter(args: argparse.Namespace) -> Callable[..., Path]:
    """An exporter with export()'s arguments that runs --recipe auto (for `pull`)."""
    from ..convert.calib import BUILTIN
    from ..evals.auto import export_auto

    def run(model: str, out: Path, recipe: Recipe, **kw: Any) -> Path:
        r = export_auto(
            model, out, max_ppl_ratio=args.max_ppl_ratio, min_top1=args.min_top1,
            dataset=args.dataset or BUILTIN, base=recipe, force=kw.get("force", False),
            name=kw.get("name"), generation=kw.get("generation"), why=kw.get("why"),
            only=args.candidates, **({"progress": kw["progress"]} if kw.get("progress") else {}),
        )  # fmt: skip
        print_auto(r, args.max_ppl_ratio, args.min_top1)
        return r.path

    return run


def print_auto(r: AutoResult, max_ppl_ratio: float, min_top1: float) -> None:
    """What --recipe auto measured, as a table on stderr, and what it kept and why."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    cpu = r.cpu
    t = Table(
        title=f"recipes measured on {cpu.get('model')} ({cpu.get('class')}; bounds: ppl <= "
        f"{max_ppl_ratio}x, top-1 >= {min_top1}, {r.rows[0]['tokens']} tokens)"
    )
    for col in (
        "recipe",
        "size MB",
        "ppl x ref",
        "top-1",
        "mean KL",
        "decode tok/s",
        "export s",
        "meets",
    ):
        t.add_column(col, justify="left" if col == "recipe" else "right")
    for row in r.rows:
        d = row.get("decode")
        tps = f"{d['tokens_per_second']:.1f} ({d['min']:.0f}-{d['max']:.0f})" if d else "-"
        t.add_row(
            row["recipe"],
            f"{row['size_mb']:.0f}",
            f"{row['ppl_ratio']:.3f}",
            f"{row['top1']:.3f}",
            f"{row['mean_kl']:.4f}",
            tps,
            f"{row['export_seconds']:.0f}",
            "yes" if row["met"] else "no",
        )
    console.print(t)
    console.print(f"kept {r.chosen}: {r.why}", highlight=False)  # fmt: skip
