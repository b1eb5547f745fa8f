"""`ovchat cp NAME NEW`: another name for a model, with no copy of its weights. NAME may also
be an export's path: it joins the library by name and stays where it is."""

from __future__ import annotations

import argparse

from ..library.manage import copy

FLAGS = {"model": "NAME", "new": "NEW"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="NAME", help="library name, or an export's path")
    p.add_argument("new", metavar="NEW", help="the new name (name or name:tag)")


def main(args: argparse.Namespace) -> int:
    entry = copy(args.model, args.new)
    print(f"{entry.ref} → {entry.alias_of}")
    return 0
