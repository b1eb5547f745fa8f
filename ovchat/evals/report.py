"""`ovchat eval`'s output: the fidelity table for the terminal and as Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .fidelity import EvalResult
from .quality import LOOP_REP4, AnswerSummary


def render_table(r: EvalResult) -> Any:
    from rich.table import Table

    t = Table(title=f"ovchat eval: {Path(r.model).name} on {r.tokens} tokens of pydoc_data")
    for col in ("model", "size MB", "perplexity", "× ref", "top-1 agree", "mean KL"):
        t.add_column(col, justify="left" if col == "model" else "right")
    t.add_row("reference (PyTorch fp32)", f"{r.reference_size_mb:.0f}",
              f"{r.reference_perplexity:.3f}", "1.000", "1.000", "0")  # fmt: skip
    for row in r.rows:
        t.add_row(
            row["label"],
            f"{row['size_mb']:.0f}",
            f"{row['perplexity']:.3f}",
            f"{row['ppl_ratio_to_reference']:.3f}",
            f"{row['top1_agreement']:.3f}",
            f"{row['mean_kl']:.2e}",
        )
    return t


def markdown_table(r: EvalResult) -> str:
    lines = [
        "| export | size on disk | perplexity | × reference | top-1 agreement | mean KL (nats) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| reference (PyTorch fp32) | {r.reference_size_mb:.0f} MB | "
        f"{r.reference_perplexity:.3f} | 1.000 | 1.000 | 0 |",
    ]
    for row in r.rows:
        lines.append(
            f"| {row['label']} | {row['size_mb']:.0f} MB | {row['perplexity']:.3f} | "
            f"{row['ppl_ratio_to_reference']:.3f} | {row['top1_agreement']:.3f} | "
            f"{row['mean_kl']:.4f} |"
        )
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def answers_rows(summaries: list[AnswerSummary]) -> list[list[str]]:
    return [
        [
            s.label,
            str(s.answers),
            _pct(s.end_rate),
            _pct(s.loop_rate),
            f"{_pct(s.loop_rate_020)} / {_pct(s.loop_rate_030)}",
            f"{s.mean_tokens:.0f}",
            f"{s.seconds:.0f}",
        ]
        for s in summaries
    ]


ANSWER_COLUMNS = ("model", "answers", "ended", "looped", "looped at 0.2 / 0.3",
                  "mean tokens", "seconds")  # fmt: skip


def render_answers(summaries: list[AnswerSummary]) -> Any:
    from rich.table import Table

    s = summaries[0]
    t = Table(
        title=f"answers: {s.prompts} prompts x {len(s.seeds)} seeds, at most "
        f"{s.max_new_tokens} new tokens; looped = repeated word 4-grams >= {LOOP_REP4}"
    )
    for col in ANSWER_COLUMNS:
        t.add_column(col, justify="left" if col == "model" else "right")
    for row in answers_rows(summaries):
        t.add_row(*row)
    return t


def markdown_answers(summaries: list[AnswerSummary]) -> str:
    lines = ["| " + " | ".join(ANSWER_COLUMNS) + " |",
             "|---|" + "---:|" * (len(ANSWER_COLUMNS) - 1)]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in answers_rows(summaries)]
    return "\n".join(lines)


def sampling_line(summaries: list[AnswerSummary]) -> str:
    s = summaries[0].sampling
    return "sampling (the model's own, with any --set on top): " + ", ".join(
        f"{k}={v}" for k, v in s.items()
    )
