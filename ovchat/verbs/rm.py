"""`ovchat rm NAME...`: remove models from the library (asks first unless -y). An export is
deleted when its last name goes; nothing outside the library is ever deleted, and a model a
running server holds is refused."""

from __future__ import annotations

import argparse
import sys

from ..errors import OptionError
from ..library.manage import remove
from ..library.names import looks_like_path, parse_ref
from ..library.store import find_ref, sharing, size_bytes
from .cliargs import human_size

FLAGS = {"model": "NAME"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="NAME", help="library names (see ovchat list)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask")


def _question(name: str) -> str:
    if looks_like_path(name):
        return f"remove {name}?"
    entry = find_ref(parse_ref(name))
    if entry is None:
        return f"remove {name}?"
    if not entry.managed:
        return f"remove the name {entry.ref} (its export at {entry.dir} stays)?"
    others = sharing(entry)
    if others:
        return f"remove the name {entry.ref} (the export stays: also {others[0].ref})?"
    return f"remove {entry.ref} and delete its export ({human_size(size_bytes(entry.dir))})?"


def main(args: argparse.Namespace) -> int:
    for name in args.models:
        if not args.yes:
            print(f"{_question(name)} [y/N] ", end="", file=sys.stderr, flush=True)
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes"):
                raise OptionError(f"{name} was not removed", "answer y, or pass -y")
        done = remove(name)
        if done["deleted_export"]:
            print(f"removed {done['name']} ({human_size(done['freed_bytes'])} freed)")
        elif done["still_named"]:
            print(f"removed {done['name']} (its export stays: {', '.join(done['still_named'])})")
        else:
            print(f"removed {done['name']} (its export at {done['path']} stays)")
    return 0
