"""Fidelity of an export against its unquantized reference: perplexity, top-1 next-token
agreement and KL divergence on an offline corpus (the reference is PyTorch fp32 on the
export's source). `--recipes` exports and compares several recipes in one table."""

from __future__ import annotations

import argparse

from ..evals.fidelity import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_WINDOW,
    TARGET_PPL_RATIO,
    TARGET_TOP1,
    evaluate,
    record,
)
from ..evals.report import markdown_table, render_table
from .cliargs import add_report_arguments, write_json

FLAGS = {"reference": "--reference", "max_tokens": "--max-tokens", "model_dir": "MODEL"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model_dir", nargs="?", help="library name or export dir (default: the default model)"
    )
    p.add_argument("--reference", help="unquantized HF model dir (default: from the manifest)")
    p.add_argument("--recipes", action="store_true", help="also export and compare recipes")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="tokens per window")
    add_report_arguments(p)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    r = evaluate(args.model_dir, args.reference, args.recipes, args.max_tokens, args.window)
    record(r)  # `ovchat show` reports it
    to_stdout = args.json == "-"
    console = Console(stderr=to_stdout)
    console.print(render_table(r))
    for note in r.notes:
        console.print(f"note: {note}", highlight=False)
    if r.targets:
        t = r.targets
        console.print(
            f"targets: default recipe perplexity {t['ppl_ratio_to_fp16']:.3f}× fp16 "
            f"(≤ {TARGET_PPL_RATIO}: {'met' if t['ppl_met'] else 'NOT met'}), top-1 agreement "
            f"{t['top1_agreement']:.3f} (≥ {TARGET_TOP1}: {'met' if t['top1_met'] else 'NOT met'})",
            highlight=False,
        )
    if args.markdown:
        console.print(markdown_table(r), markup=False, highlight=False)
    if args.json:
        write_json(r.to_dict(), args.json)
    return 0
