"""`ovchat bench`'s output: a terminal table, a Markdown table and a bar chart, their cells
made in one place."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .runner import METRICS, BenchResult, EngineResult


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def _cell(e: EngineResult, key: str, dash: str, before_ratio: str) -> str:
    """median (min–max), then ×ratio to ovchat: one format for the terminal and Markdown."""
    m = e.metrics[key]
    cell = _fmt(m["median"])
    if len(m["values"]) > 1:
        cell += f" ({_fmt(m['min'])}{dash}{_fmt(m['max'])})"
    if e.engine != "ovchat" and key in e.ratios:
        cell += f"{before_ratio}×{e.ratios[key]:.2f}"
    return cell


def render_table(r: BenchResult) -> Any:
    from rich.table import Table

    t = Table(title=f"ovchat bench: {Path(r.model).name} on {r.machine['cpu']}, "
              f"{r.machine['cores']} cores (median, min-max; ×: engine / ovchat)")  # fmt: skip
    t.add_column("engine")
    for _, label, unit, _ in METRICS:
        t.add_column(f"{label} {unit}", justify="right")
    for e in r.engines:
        if not e.ok:
            t.add_row(e.engine, f"failed: {e.error}")
            continue
        cells = [_cell(e, key, "-", "\n") for key, *_ in METRICS]
        t.add_row(e.engine, *cells)
    return t


def markdown_table(r: BenchResult) -> str:
    head = "| engine | " + " | ".join(f"{lbl} ({u})" for _, lbl, u, _ in METRICS) + " |"
    lines = [head, "|---|" + "---:|" * len(METRICS)]
    for e in r.engines:
        if not e.ok:
            continue
        cells = [_cell(e, key, "–", " ") for key, *_ in METRICS]
        lines.append(f"| {e.engine} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart(r: BenchResult, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [e for e in r.engines if e.ok]
    keys = list(METRICS)
    cols = (len(keys) + 1) // 2
    fig, grid = plt.subplots(2, cols, figsize=(3.2 * cols, 7.0))
    axes = list(grid.flat)[: len(keys)]
    names = [e.engine for e in ok]
    colors = ["#0068b5" if n == "ovchat" else "#9aa5b1" for n in names]
    for ax, (key, label, unit, higher) in zip(axes, keys, strict=True):
        med = [e.metrics[key]["median"] for e in ok]
        lo = [max(0.0, m - e.metrics[key]["min"]) for m, e in zip(med, ok, strict=True)]
        hi = [max(0.0, e.metrics[key]["max"] - m) for m, e in zip(med, ok, strict=True)]
        ax.bar(names, med, color=colors, yerr=[lo, hi], capsize=3)
        ax.set_title(f"{label} ({unit})\n{'higher' if higher else 'lower'} is better", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"{Path(r.model).name} — {r.machine['cpu']}, {r.machine['cores']} cores",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
