"""Size limits on what a request may ask to be compiled into a grammar, checked before any
of it reaches xgrammar (docs/limits.md states them for users).

Why: xgrammar compiles in C++ with no budget of its own; a small schema can ask for a large
grammar (a deep nesting, a long `pattern`), and a large enough one takes minutes, or all of
the memory, or aborts the process. Each limit is far above what a real schema needs and far
below what takes a server minutes to compile; the server's compile time limit bounds the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import OptionError

MAX_DEPTH = 64  # JSON objects and arrays nested inside a schema
MAX_NODES = 5_000  # values in a schema (every object, array, string, number, ...)
MAX_PATTERN = 1_000  # characters of a regular expression (a schema's pattern, or `regex`)
# the patterns of one schema together: xgrammar 0.1.31 aborted the process (LogFatalError in
# earley_parser.cc) on 100 patterns of 990 characters, and took 8 s (vocab 1,000) on 90
MAX_PATTERNS = 16_000
MAX_GRAMMAR = 32_768  # characters of a grammar (the request's own, or one made from a schema)
# xgrammar unrolls a bounded repetition (maxLength 5,000: 6 s to compile on SmolLM2's 49k
# vocabulary): the bounds of all of them together (maxLength, maxItems, {m,n} in patterns)
MAX_REPEAT = 2_048
BOUNDS = ("minLength", "maxLength", "minItems", "maxItems")
_QUANTIFIER = re.compile(r"\{(\d+)(?:,(\d*))?\}")
HINT = "simplify it; the limits are in the documentation's Limits page"


def check_schema(schema: Any, what: str, param: str) -> None:
    """Raise OptionError(param) if the schema `schema` is deeper, larger or holds longer
    patterns than the limits allow (`what` names it in the message)."""
    nodes = repeat = patterns = 0
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
                if isinstance(text, str):
                    if len(text) > MAX_PATTERN:
                        _refuse(what, f"has a {key} of {len(text):,} characters", param)
                    repeat += repetitions(text)
                    patterns += len(text)
            if patterns > MAX_PATTERNS:
                _refuse(
                    what, f"has patterns of more than {MAX_PATTERNS:,} characters in all", param
                )
            for k in BOUNDS:
                bound = value.get(k)
                if (
                    isinstance(bound, (int, float))
                    and not isinstance(bound, bool)
                    and bound == bound
                ):
                    repeat += int(min(bound, MAX_REPEAT + 1))  # inf and 1e308 too
            if repeat > MAX_REPEAT:
                _refuse(what, f"bounds its repetitions to more than {MAX_REPEAT:,} in all", param)
            keys = value.get("patternProperties")
            for key in keys if isinstance(keys, Mapping) else ():
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
    """Raise OptionError(param) if a regex or a grammar (`kind`) is longer than allowed, or
    bounds its repetitions to more than MAX_REPEAT in all."""
    limit = MAX_PATTERN if kind == "regex" else MAX_GRAMMAR
    if len(text) > limit:
        _refuse(what, f"is {len(text):,} characters long (the limit is {limit:,})", param)
    if repetitions(text) > MAX_REPEAT:
        why = f"bounds its repetitions to more than {MAX_REPEAT:,} in all (the limit)"
        _refuse(what, why, param)


def repetitions(text: str) -> int:
    """The sum of the bounds of a regex's or a grammar's bounded repetitions ({m,n})."""
    return sum(int(hi or lo) for lo, hi in _QUANTIFIER.findall(text))


def _refuse(what: str, why: str, param: str) -> None:
    limits = (
        f"at most {MAX_DEPTH} levels, {MAX_NODES:,} values, patterns of {MAX_PATTERN:,} "
        f"characters each and {MAX_PATTERNS:,} in all, repetitions bounded to "
        f"{MAX_REPEAT:,} in all, a {MAX_GRAMMAR:,}-character grammar"
    )
    if "limit is" not in why:
        why = f"{why} (the limits: {limits})"
    raise OptionError(f"{what} is too large to compile: it {why}", HINT, param=param)


# -- a grammar that accepts nothing ---------------------------------------------------------
_TOKEN = re.compile(
    r'\s*(?:("(?:[^"\\]|\\.)*")|(\[(?:[^\]\\]|\\.)*\])|([A-Za-z_][A-Za-z0-9_]*)'
    r"|(\{\d*(?:,\d*)?\})|([()|?*+]))"
)


def accepts_something(ebnf: str) -> bool:
    """Whether the grammar's root derives at least one finite string.

    Written by hand for the EBNF that jsongrammar.py writes (literals, classes, names,
    groups, |, ?, *, +, {m,n}): xgrammar compiles a grammar such as `root ::= ref0`,
    `ref0 ::= ref0` (from the schema {"$ref": "#"}) and then lets any token through.
    """
    rules = {}
    for line in ebnf.splitlines():
        name, _, body = line.partition(" ::= ")
        rules[name.strip()] = [t for t in _TOKEN.findall(body)]
    productive: set[str] = set()
    while True:
        more = {
            n for n, toks in rules.items() if n not in productive and _derives(toks, productive)
        }
        if not more:
            return "root" in productive
        productive |= more


def _derives(tokens: list[tuple[str, ...]], productive: set[str]) -> bool:
    pos = 0

    def alternation() -> bool:
        nonlocal pos
        ok = sequence()
        while pos < len(tokens) and tokens[pos][4] == "|":
            pos += 1
            ok = sequence() or ok
        return ok

    def sequence() -> bool:
        nonlocal pos
        ok = True
        while pos < len(tokens) and tokens[pos][4] not in ("|", ")"):
            ok = item() and ok
        return ok

    def item() -> bool:
        nonlocal pos
        literal, chars, name, _, op = tokens[pos]
        pos += 1
        if op == "(":
            ok = alternation()
            pos += 1  # ")"
        else:
            ok = bool(literal or chars) or name in productive
        if pos < len(tokens):
            quantifier, op = tokens[pos][3], tokens[pos][4]
            if op in ("?", "*", "+") or quantifier:
                pos += 1
                if op in ("?", "*") or quantifier.startswith(("{0", "{,")):
                    return True  # may repeat zero times
        return ok

    return alternation()
