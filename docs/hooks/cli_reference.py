"""MkDocs hook: the CLI reference page is every verb's `--help`, taken from ovchat's own
parsers (ovchat.cli.build_parser) when the site is built, so the page cannot drift from the
code. docs/cli.md holds a marker that this hook replaces."""

from __future__ import annotations

import argparse
import os
from typing import Any

MARKER = "<!-- ovchat-cli-reference -->"
WIDTH = "100"  # argparse wraps help at $COLUMNS; fixed so the page does not depend on a terminal


def verb_helps() -> dict[str, str]:
    """`ovchat --help` (key "") and every verb's `ovchat VERB --help`, in VERBS' order."""
    from ovchat.cli import VERBS, build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        helps = {"": build_parser().format_help()}
        for verb in VERBS:
            parser = build_parser(verb)
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            helps[verb] = sub.choices[verb].format_help()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return helps


def render() -> str:
    from ovchat.cli import VERBS

    helps = verb_helps()
    out = ["| verb | what it does |", "|---|---|"]
    out += [f"| [`{v}`](#ovchat-{v}) | {text} |" for v, text in VERBS.items()]
    out += ["", "## `ovchat`", "", "```text", helps[""].rstrip(), "```", ""]
    for verb in VERBS:
        out += [f"## `ovchat {verb}` {{#ovchat-{verb}}}", "", "```text", helps[verb].rstrip()]
        out += ["```", ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())
