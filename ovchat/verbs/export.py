"""`ovchat export`: a Hugging Face id, HF dir or .gguf → an OpenVINO IR dir (int4 by default,
the seed's recipe: symmetric, groups of 128, ratio 0.6; int8 for embedding models)."""

from __future__ import annotations

import argparse
from typing import Any

from ..convert.embedding import POOLINGS
from ..convert.recipe import (
    DEFAULT_GROUP_SIZE,
    DEFAULT_RATIO,
    DEFAULT_SYM,
    DEFAULT_TASK,
    DEFAULT_WEIGHT_FORMAT,
    FALLBACKS,
    WEIGHT_FORMATS,
    Recipe,
)
from ..modeldir import EMBEDDING_TASKS

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
}


def add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    """The export options, shared by `export` and `pull` (they mirror optimum-cli's)."""
    p.add_argument(
        "--weight-format",
        choices=WEIGHT_FORMATS,
        help=f"weight precision (default {DEFAULT_WEIGHT_FORMAT}; "
        f"{DEFAULT_EMBEDDING_WEIGHT_FORMAT} for embedding models)",
    )
    p.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE)
    p.add_argument("--ratio", type=float, default=DEFAULT_RATIO)
    sym = p.add_mutually_exclusive_group()
    sym.add_argument("--sym", dest="sym", action="store_true", default=DEFAULT_SYM)
    sym.add_argument("--asym", dest="sym", action="store_false")
    p.add_argument("--group-size-fallback", choices=FALLBACKS, default=None)
    p.add_argument(
        "--task",
        default=DEFAULT_TASK,
        help=f"optimum task ({DEFAULT_TASK}; feature-extraction: an embedding model)",
    )
    p.add_argument("--trust-remote-code", action="store_true")
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


def recipe_from_args(args: argparse.Namespace, weight_format: str | None = None) -> Recipe:
    """The Recipe the flags ask for; `weight_format` is the default when none was given."""
    embeds = args.task.startswith(EMBEDDING_TASKS)
    fmt = args.weight_format or weight_format
    fmt = fmt or (DEFAULT_EMBEDDING_WEIGHT_FORMAT if embeds else DEFAULT_WEIGHT_FORMAT)
    return Recipe(
        weight_format=fmt,
        group_size=args.group_size,
        ratio=args.ratio,
        sym=args.sym,
        group_size_fallback=args.group_size_fallback,
        task=args.task,
        trust_remote_code=args.trust_remote_code,
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


def main(args: argparse.Namespace) -> int:
    from ..convert.export import export

    out = export(
        args.model,
        args.output_dir,
        recipe_from_args(args),
        force=args.force,
        name=args.name,
        embedding=embedding_from_args(args),
    )
    print(out)
    return 0
