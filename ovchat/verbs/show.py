"""`ovchat show NAME`: one model's manifest: source, recipe asked and applied, fidelity (when
`ovchat eval` measured it), chat template, generation defaults (`--json` for everything)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..convert.recipe import recipe_label
from ..library.manage import show_model
from .cliargs import human_size

FLAGS = {"model": "NAME"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME", help="library name, or an export's path")
    p.add_argument("--json", action="store_true", help="one JSON object, every field")


def _applied(applied: dict[str, Any] | None) -> str:
    if not applied:
        return "unknown"
    shares = applied.get("share_by_type") or {}
    text = ", ".join(f"{k} {v:.0%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1]))
    groups = applied.get("int4_group_sizes") or {}
    if groups:
        text += "; int4 groups of " + ", ".join(sorted(groups, key=int))
    return text or "unknown"


def _auto_lines(auto: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What `--recipe auto` measured: the CPU, each candidate's fidelity and speed, the
    choice and why."""
    if not auto:
        return []
    cpu = auto.get("cpu") or {}
    flags = ", ".join(cpu.get("flags") or []) or "none of note"
    out = [
        (
            "chosen by",
            f"measurement on {cpu.get('model', '?')} (class {cpu.get('class', '?')}"
            f"; {flags}) {auto.get('measured', '')}: {auto.get('why', '')}",
        )
    ]
    for row in auto.get("tried") or []:
        speed = row.get("decode_tok_s")
        tps = f"{speed:.1f} tokens/s" if speed is not None else "speed not measured"
        kept = " (kept)" if row.get("recipe") == auto.get("chosen") else ""
        out.append(
            (
                "  candidate",
                f"{row.get('recipe')}: ppl {row.get('ppl_ratio', 0):.3f}×, "
                f"top-1 {row.get('top1', 0):.3f}, {row.get('size_mb', 0):.0f} MB, {tps}, "
                f"{'within' if row.get('met') else 'outside'} the bounds{kept}",
            )
        )
    return out  # fmt: skip


def main(args: argparse.Namespace) -> int:
    m = show_model(args.model)
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    src = m["source"] or {}
    lines = [
        ("name", m["name"] + (f" (alias of {m['alias_of']})" if m.get("alias_of") else "")),
        ("model", f"{m['display_name']}, {m['kind']}"),
        ("path", m["path"]),
        ("size", human_size(m["size_bytes"])),
        ("context", f"{m['context_length']} tokens"),
        ("source", f"{src.get('kind', '?')} {src.get('model', 'unknown')}"),
        ("recipe asked", recipe_label(m["recipe_asked"]) if m["recipe_asked"] else "unknown"),
        ("applied", _applied(m["recipe_applied"])),
        ("created", f"{m['created'] or '?'} in {m['export_seconds'] or '?'} s"),
    ]
    lines += _auto_lines(m.get("recipe_auto"))
    fid = m["fidelity"]
    if fid and fid.get("rows"):
        row = fid["rows"][0]
        lines.append(
            (
                "fidelity",
                f"perplexity {row['ppl_ratio_to_reference']:.3f}× the reference, top-1 "
                f"agreement {row['top1_agreement']:.3f}, KL {row['mean_kl']:.4f} "
                f"({fid.get('tokens')} tokens, ovchat eval)",
            )
        )
    else:
        lines.append(("fidelity", "not measured (ovchat eval NAME)"))
    if m["embedding"]:
        e = m["embedding"]
        guessed = f" (guessed: {', '.join(e['guessed'])})" if e.get("guessed") else ""
        lines.append(
            ("embedding", f"pooling {e.get('pooling')}, normalize {e.get('normalize')}{guessed}")
        )
    if m["generation"]:
        lines.append(("generation", ", ".join(f"{k}={v}" for k, v in m["generation"].items())))
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k.ljust(width)}  {v}")
    if m["chat_template"]:
        print("chat template:")
        print(m["chat_template"].rstrip())
    return 0
