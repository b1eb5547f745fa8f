"""`ovchat list`: the models in the library: name, kind, size, recipe, context window,
created (`--json` for all the fields)."""

from __future__ import annotations

import argparse
import json

from ..library.manage import list_models
from .cliargs import human_size, print_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON list, every field")


def main(args: argparse.Namespace) -> int:
    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("the library is empty: add a model with ovchat pull SOURCE [NAME]")
        return 0
    table = []
    for r in rows:
        note = []
        if r["alias_of"]:
            note.append(f"alias of {r['alias_of']}")
        elif not r["in_library"]:
            note.append(f"at {r['path']}")
        if r["error"]:
            note.append(f"damaged: {r['error']}")
        table.append(
            [
                r["name"] + (" *" if r["default"] else ""),
                r["kind"] or "?",
                human_size(r["size_bytes"]),
                r["recipe"] or "?",
                str(r["context_length"] or "?"),
                (r["created"] or "")[:16].replace("T", " "),
                "; ".join(note),
            ]
        )
    print_table(table, ["NAME", "KIND", "SIZE", "RECIPE", "CONTEXT", "CREATED", ""])
    print("* the name's default tag")
    return 0
