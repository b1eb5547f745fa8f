"""Progress lines for long work (exports, benchmarks, evals): one callable type, one printer."""

from __future__ import annotations

import sys
from collections.abc import Callable

Progress = Callable[[str], None]


def printer(prefix: str = "ovchat") -> Progress:
    """Print each step to stderr as `PREFIX: message`, at once (stdout stays for results)."""

    def say(message: str) -> None:
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)

    return say


def silent(message: str) -> None:
    """A Progress that says nothing."""
