"""`ovchat export`: a Hugging Face id, HF dir or .gguf → an OpenVINO IR dir (int4 by default,
the seed's recipe: symmetric, groups of 128, ratio 0.6)."""

from __future__ import annotations

import argparse

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

FLAGS = {
    "force": "--force",
    "output_dir": "OUTPUT_DIR",
    "group_size": "--group-size",
    "group_size_fallback": "--group-size-fallback",
    "ratio": "--ratio",
    "weight_format": "--weight-format",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="Hugging Face id, local HF model dir, or .gguf file")
    p.add_argument("output_dir", help="where to write the OpenVINO model")
    p.add_argument("--weight-format", choices=WEIGHT_FORMATS, default=DEFAULT_WEIGHT_FORMAT)
    p.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE)
    p.add_argument("--ratio", type=float, default=DEFAULT_RATIO)
    sym = p.add_mutually_exclusive_group()
    sym.add_argument("--sym", dest="sym", action="store_true", default=DEFAULT_SYM)
    sym.add_argument("--asym", dest="sym", action="store_false")
    p.add_argument("--group-size-fallback", choices=FALLBACKS, default=None)
    p.add_argument("--task", default=DEFAULT_TASK)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--name", help="model name recorded in the manifest")
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")


def main(args: argparse.Namespace) -> int:
    from ..convert.export import export

    recipe = Recipe(
        weight_format=args.weight_format,
        group_size=args.group_size,
        ratio=args.ratio,
        sym=args.sym,
        group_size_fallback=args.group_size_fallback,
        task=args.task,
        trust_remote_code=args.trust_remote_code,
    )
    out = export(args.model, args.output_dir, recipe, force=args.force, name=args.name)
    print(out)
    return 0
