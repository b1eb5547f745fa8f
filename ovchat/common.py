"""Command-line options shared by the verbs that generate (generate, chat, serve, bench)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .engine import DEFAULT_DEVICE, DEFAULT_MAX_NEW_TOKENS, Completion, GenerationOptions
from .errors import OptionError


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", help="exported model dir (default: SmolLM2-135M-Instruct)")
    p.add_argument("-d", "--device", default=DEFAULT_DEVICE, help="CPU, GPU, GPU.0, NPU, AUTO")
    p.add_argument(
        "-p",
        "--property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="OpenVINO property, repeatable (e.g. -p INFERENCE_PRECISION_HINT=f32)",
    )


def add_generation_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    p.add_argument("-t", "--temperature", type=float, help="0 = greedy (default: the model's)")
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--stop", action="append", default=[], help="stop string, repeatable")


def options_from_args(a: argparse.Namespace) -> GenerationOptions:
    return GenerationOptions(
        max_new_tokens=a.max_new_tokens,
        temperature=a.temperature,
        top_p=a.top_p,
        top_k=a.top_k,
        repetition_penalty=a.repetition_penalty,
        seed=a.seed,
        stop=tuple(a.stop),
    ).validate()


def stats_line(c: Completion, context: tuple[int, int] | None = None) -> str:
    """The short line after an answer (generate --stats, chat): tokens, speed, first token,
    (tokens in context / window), and why it ended when that was not the model's choice."""
    parts = [f"{c.generated_tokens} tokens"]
    if c.tokens_per_second:
        parts.append(f"{c.tokens_per_second:.1f} tok/s")
    if c.ttft is not None:
        parts.append(f"first token {c.ttft * 1000:.0f} ms")
    if context is not None:
        parts.append(f"{context[0]}/{context[1]} in context")
    else:
        parts.append(f"{c.prompt_tokens} prompt tokens")
    if c.finish_reason == "length":
        parts.append("cut at the token limit")
    elif c.finish_reason == "cancelled":
        parts.append("stopped")
    return " · ".join(parts)


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """--json and --markdown, shared by the verbs that report tables (bench, eval)."""
    p.add_argument("--json", nargs="?", const="-", metavar="PATH", help="JSON to stdout or PATH")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table too")


def write_json(data: Any, dest: str) -> None:
    """`--json` output: "-" is stdout (the human-readable report then goes to stderr)."""
    text = json.dumps(data, indent=2)
    if dest == "-":
        print(text)
    else:
        Path(dest).write_text(text + "\n")


def properties_from_args(a: argparse.Namespace) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for item in a.property:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"property {item!r} is not KEY=VALUE", "e.g. -p NUM_STREAMS=1")
        props[key.strip()] = value.strip()
    return props
