"""`ovchat eval`'s output: the fidelity table for the terminal and as Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .fidelity import EvalResult


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
