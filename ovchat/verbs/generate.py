"""`ovchat generate`: one answer, streamed to stdout (or one JSON object)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from ..engine.images import MAX_IMAGES
from ..errors import OptionError
from ..model import generate
from .cliargs import (
    add_constraint_arguments,
    add_generation_arguments,
    add_model_arguments,
    add_prompt_lookup_argument,
    options_from_args,
    properties_from_args,
    stats_line,
)

FLAGS = {
    "raw": "--raw",
    "prompt": "PROMPT",
    "images": "--image",
    **{f"images[{i}]": "--image" for i in range(MAX_IMAGES)},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompt", nargs="?", help="the prompt (default: read from stdin)")
    add_model_arguments(p)
    p.add_argument("-s", "--system", help="system message")
    p.add_argument("--raw", action="store_true", help="send the prompt as is, no chat template")
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="FILE",
        help="an image for a vision-language model (repeatable; png, jpeg, webp, gif, bmp)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object: text and stats")
    p.add_argument("--stats", action="store_true", help="print speed stats to stderr")
    add_prompt_lookup_argument(p)
    add_generation_arguments(p)
    add_constraint_arguments(p)


def main(args: argparse.Namespace) -> int:
    prompt = args.prompt
    if prompt is None:
        if sys.stdin.isatty():
            raise OptionError("no prompt given", 'pass one: ovchat generate "your question"')
        try:
            prompt = sys.stdin.buffer.read().decode("utf-8")
        except UnicodeDecodeError as e:
            raise OptionError("standard input is not UTF-8 text", "check its encoding") from e
    if not prompt.strip():
        raise OptionError("the prompt is empty", 'pass one: ovchat generate "your question"')
    options = options_from_args(args)
    props = properties_from_args(args)

    def echo(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    result = generate(
        prompt,
        model=args.model,
        device=args.device,
        system=args.system,
        raw=args.raw,
        options=options,
        properties=props,
        on_text=None if args.json else echo,
        prompt_lookup=args.prompt_lookup,
        images=args.image,
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(result), ensure_ascii=False))
    else:
        if not result.text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
    if args.stats:
        print(stats_line(result), file=sys.stderr)
    return 0
