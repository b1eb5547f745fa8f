"""Command-line options shared by the verbs that generate (generate, chat, serve, bench)."""

from __future__ import annotations

import argparse
from typing import Any

from .engine import DEFAULT_DEVICE, DEFAULT_MAX_NEW_TOKENS, GenerationOptions
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


def properties_from_args(a: argparse.Namespace) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for item in a.property:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"property {item!r} is not KEY=VALUE", "e.g. -p NUM_STREAMS=1")
        props[key.strip()] = value.strip()
    return props
