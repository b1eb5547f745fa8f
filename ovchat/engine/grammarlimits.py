"""Size limits on what a request may ask to be compiled into a grammar, checked before any
of it reaches xgrammar (docs/limits.md states them for users).

Why: xgrammar compiles in C++ with no budget of its own; a small schema can ask for a large
grammar (a deep nesting, a long `pattern`), and a large enough one takes minutes, or all of
the memory, or aborts the process. Each limit is far above what a real schema needs and far
below what costs a server more than about a second to compile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import OptionError

MAX_DEPTH = 64  # JSON objects and arrays nested inside a schema
MAX_NODES = 5_000  # values in a schema (every object, array, string, number, ...)
MAX_PATTERN = 1_000  # characters of a regular expression (a schema's pattern, or `regex`)
MAX_GRAMMAR = 65_536  # characters of a grammar (the request's own, or one made from a schema)
HINT = "simplify it; the limits are in the documentation's Limits page"


def check_schema(schema: Any, what: str, param: str) -> None:
    """Raise OptionError(param) if the schema `schema` is deeper, larger or holds longer
    patterns than the limits allow (`what` names it in the message)."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            _refuse(what, f"has more than {MAX_NODES:,} values", param)
        if isinstance(value, Mapping):
            children: Any = value.values()
            for key in ("pattern", "regex"):
                text = value.get(key)
                if isinstance(text, str) and len(text) > MAX_PATTERN:
                    _refuse(what, f"has a {key} of {len(text):,} characters", param)
            for key in value.get("patternProperties") or ():
                if isinstance(key, str) and len(key) > MAX_PATTERN:
                    _refuse(what, f"has a pattern of {len(key):,} characters", param)
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            _refuse(what, f"nests more than {MAX_DEPTH} levels of objects and arrays", param)
        stack.extend((child, depth + 1) for child in children)


def check_text(kind: str, text: str, what: str, param: str) -> None:
    """Raise OptionError(param) if a regex or a grammar (`kind`) is longer than allowed."""
    limit = MAX_PATTERN if kind == "regex" else MAX_GRAMMAR
    if len(text) > limit:
        _refuse(what, f"is {len(text):,} characters long (the limit is {limit:,})", param)


def _refuse(what: str, why: str, param: str) -> None:
    limits = (
        f"at most {MAX_DEPTH} levels, {MAX_NODES:,} values, "
        f"{MAX_PATTERN:,}-character patterns and a {MAX_GRAMMAR:,}-character grammar"
    )
    if "limit is" not in why:
        why = f"{why} (the limits: {limits})"
    raise OptionError(f"{what} is too large to compile: it {why}", HINT, param=param)
