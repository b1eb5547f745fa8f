"""`ovchat pull SOURCE [NAME]`: export a Hugging Face id or dir, a .gguf file or a model of the
local Ollama store (`ollama:NAME[:TAG]`) into the model library under NAME (`name` or
`name:tag`; default: named after the source, tagged with its weight format). The export
options are `ovchat export`'s; the export is atomic."""

from __future__ import annotations

import argparse

from ..errors import OptionError
from ..library.default import KNOWN
from ..library.names import AUTO_TAG, RECIPE_TAGS, parse_ref
from ..library.ollama import is_ollama
from ..library.pull import pull
from .export import FLAGS as EXPORT_FLAGS
from .export import (
    add_auto_arguments,
    add_recipe_arguments,
    auto_exporter,
    embedding_from_args,
    recipe_from_args,
)

FLAGS = {**EXPORT_FLAGS, "name": "NAME"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        help="Hugging Face id, local HF model dir, .gguf file, ollama:NAME[:TAG] (a model "
        "in the local Ollama store, $OLLAMA_MODELS or ~/.ollama/models), or smollm2 (the "
        "default model, from its GGUF)",
    )
    p.add_argument("name", nargs="?", help="library name, e.g. phi3 or phi3:int8")
    add_recipe_arguments(p)
    add_auto_arguments(p)


def main(args: argparse.Namespace) -> int:
    # A weight-format tag (phi3:int8) asks for that recipe when no --weight-format says so.
    tag = parse_ref(args.name, param="name").tag if args.name else None
    auto = args.recipe == "auto"
    if auto and tag in RECIPE_TAGS:
        raise OptionError(
            f"the tag {tag!r} names a recipe, but --recipe auto chooses one by measurement",
            f"use another tag (default {AUTO_TAG!r})",
            param="name",
        )
    recipe = recipe_from_args(
        args,
        weight_format=tag if tag in RECIPE_TAGS else None,
        # an Ollama model and the default model are GGUF files: the same default (own blocks)
        source="model.gguf" if is_ollama(args.source) or args.source in KNOWN else args.source,
    )
    entry = pull(
        args.source,
        args.name,
        recipe,
        force=args.force,
        embedding=embedding_from_args(args),
        exporter=auto_exporter(args) if auto else None,
        tag=AUTO_TAG if auto else None,
    )
    print(entry.ref)
    return 0
