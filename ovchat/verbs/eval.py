"""Fidelity and answers of an export. Fidelity: perplexity, top-1 next-token agreement and
KL divergence against its unquantized reference on an offline corpus (`--recipes` exports
and compares several recipes). Answers: the shipped chat prompts, several seeds, the
model's own default sampling; the share of answers that end on their own, that loop, and
their mean length (`--answers all`: also the reference and llama.cpp on the GGUF)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import OptionError
from ..evals.fidelity import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_WINDOW,
    TARGET_PPL_RATIO,
    TARGET_TOP1,
    evaluate,
    record,
)
from ..evals.quality import (
    DEFAULT_ANSWER_TOKENS,
    DEFAULT_SEEDS,
    SAMPLING_KEYS,
    backends_for,
    run_answers,
    select_prompts,
)
from ..evals.report import (
    markdown_answers,
    markdown_table,
    render_answers,
    render_table,
    sampling_line,
)
from .cliargs import add_report_arguments, write_json

FLAGS = {
    "reference": "--reference",
    "max_tokens": "--max-tokens",
    "model_dir": "MODEL",
    "prompts": "--prompts",
    "prompt_ids": "--prompt-ids",
    "seeds": "--seeds",
    "answer_tokens": "--answer-tokens",
    "sampling": "--set",
}
ANSWERS = ("export", "all", "none")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model_dir", nargs="?", help="library name or export dir (default: the default model)"
    )
    p.add_argument("--reference", help="unquantized HF model dir (default: from the manifest)")
    p.add_argument("--recipes", action="store_true", help="also export and compare recipes")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="tokens per window")
    p.add_argument("--no-fidelity", action="store_true", help="measure the answers only")
    a = p.add_argument_group("answers")
    a.add_argument(
        "--answers",
        choices=ANSWERS,
        default="export",
        help="whose answers: the export (default), all (also the PyTorch reference and "
        "llama.cpp on the GGUF source; slow), none",
    )
    a.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds per prompt")
    a.add_argument("--prompts", type=int, help="the first N shipped prompts (default: all)")
    a.add_argument("--prompt-ids", help="comma-separated prompt ids instead")
    a.add_argument(
        "--answer-tokens", type=int, default=DEFAULT_ANSWER_TOKENS, help="new tokens per answer"
    )
    a.add_argument(
        "--set",
        dest="sampling",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"sampling over the model's own ({', '.join(SAMPLING_KEYS)})",
    )
    add_report_arguments(p)


def parse_sampling(items: list[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` → {key: number}; checked by GenerationOptions when used."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in SAMPLING_KEYS:
            raise OptionError(
                f"--set takes KEY=VALUE with KEY one of {', '.join(SAMPLING_KEYS)}; got {item!r}",
                param="sampling",
            )
        try:
            num = json.loads(value)
        except json.JSONDecodeError:
            num = None
        if not isinstance(num, (int, float)) or isinstance(num, bool):
            raise OptionError(f"--set {key}: {value!r} is not a number", param="sampling")
        out[key] = float(num) if key not in ("top_k", "no_repeat_ngram_size") else int(num)
    return out


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..library import resolve

    sampling = parse_sampling(args.sampling)
    if args.seeds < 1:
        raise OptionError(f"--seeds must be at least 1, got {args.seeds}", param="seeds")
    if args.answer_tokens < 1:
        raise OptionError("--answer-tokens must be at least 1", param="answer_tokens")
    prompts = select_prompts(args.prompts, args.prompt_ids.split(",") if args.prompt_ids else None)
    to_stdout = args.json == "-"
    console = Console(stderr=to_stdout)
    path = resolve(args.model_dir)
    r = None
    if not args.no_fidelity:
        r = evaluate(path, args.reference, args.recipes, args.max_tokens, args.window)
        _print_fidelity(console, r, args.markdown)
    summaries: list[Any] = []
    notes: list[str] = []
    if args.answers != "none":
        backends, notes = backends_for(path, args.answers, args.reference)
        summaries = run_answers(backends, path, prompts, list(range(args.seeds)),
                                args.answer_tokens, sampling)  # fmt: skip
        console.print(render_answers(summaries))
        console.print(f"note: {sampling_line(summaries)}", highlight=False)
        for note in notes:
            console.print(f"note: {note}", highlight=False)
        if args.markdown:
            console.print(markdown_answers(summaries), markup=False, highlight=False)
    if r is not None:
        r.answers = [s.to_dict(with_answers=False) for s in summaries]
        record(r)  # `ovchat show` reports it
    report: dict[str, Any] = r.to_dict() if r is not None else {"model": str(path)}
    report["answers"] = [s.to_dict() for s in summaries]  # with every answer's text
    report["answer_notes"] = notes
    if args.json:
        write_json(report, args.json)
    return 0


def _print_fidelity(console: Any, r: Any, markdown: bool) -> None:
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
    if markdown:
        console.print(markdown_table(r), markup=False, highlight=False)
