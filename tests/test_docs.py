"""The documentation cannot drift from the code: the CLI reference page is built from the
parsers, every flag the README and docs/ name exists in some parser, the README's links land
on real pages and headings, and the Python example is the one tests/test_api.py runs."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
from pathlib import Path

from markdown.extensions.toc import slugify

from ovchat.cli import VERBS, build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# Flags of other programs that the docs name in passing (pip, the build scripts).
OTHER_PROGRAMS = {"--no-deps", "--dry-run"}


def _hook():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "hooks/cli_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_flags() -> set[str]:
    flags = {"--help", "--version"}
    for verb in VERBS:
        parser = build_parser(verb)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for action in sub.choices[verb]._actions:
            flags.update(s for s in action.option_strings if s.startswith("--"))
    return flags


def _named_flags(text: str) -> set[str]:
    """Long flags in `ovchat ...` command lines and in inline code that starts with a dash."""
    found: set[str] = set()
    for line in text.splitlines():
        if line.strip().startswith(("ovchat ", "$ ovchat ")):
            found.update(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line.split("#")[0]))
    for span in re.findall(r"`([^`\n]+)`", text):
        if span.startswith(("-", "ovchat ")):
            found.update(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", span))
    return found


def test_cli_reference_is_every_verbs_help():
    hook = _hook()
    cli_page = (DOCS / "cli.md").read_text()
    assert hook.MARKER in cli_page
    assert "docs/hooks/cli_reference.py" in (ROOT / "mkdocs.yml").read_text()
    page = hook.on_page_markdown(cli_page, None, None, None)
    assert hook.MARKER not in page
    for verb in VERBS:
        assert f"## `ovchat {verb}` {{#ovchat-{verb}}}" in page
        assert f"usage: ovchat {verb} " in page or f"usage: ovchat {verb}\n" in page
    # Every long flag of every verb is on the page, as the parser spells it.
    missing = {f for f in _all_flags() if f not in page}
    assert not missing, missing


def _benchmark_flags() -> set[str]:
    """The flags of the scripts under benchmarks/ (their own argparse parsers)."""
    flags: set[str] = set()
    for script in (ROOT / "benchmarks").glob("*.py"):
        flags.update(re.findall(r"add_argument\(\s*\"(--[a-z][a-z0-9-]*)\"", script.read_text()))
    return flags


def test_every_flag_the_docs_name_exists():
    known = _all_flags() | _benchmark_flags() | OTHER_PROGRAMS
    unknown = {}
    for page in PAGES:
        bad = _named_flags(page.read_text()) - known
        if bad:
            unknown[page.name] = sorted(bad)
    assert not unknown, f"flags named in the docs that no parser has: {unknown}"


def test_the_flag_check_catches_a_made_up_flag():
    assert "--no-such-flag" in _named_flags("Run `ovchat serve --no-such-flag` to see.")
    assert "--no-such-flag" not in _all_flags()


def _anchors(page: Path) -> set[str]:
    anchors = set()
    for line in page.read_text().splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if not m:
            continue
        title = m.group(1)
        custom = re.search(r"\{#([\w-]+)\}\s*$", title)
        if custom:
            anchors.add(custom.group(1))
            continue
        anchors.add(slugify(re.sub(r"[`*]", "", title), "-"))
    return anchors


def test_readme_links_land_on_pages_and_headings():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", readme)
    assert len(links) >= 10
    for target, anchor in links:
        path = ROOT / target
        assert path.is_file(), target
        if anchor:
            assert anchor in _anchors(path), f"{target}#{anchor}"


def test_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_python_example_in_the_docs_is_the_tested_one():
    tree = ast.parse((ROOT / "tests/test_api.py").read_text())
    example = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "README_EXAMPLE" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    )
    assert example.strip() in (DOCS / "python.md").read_text()


def test_benchmark_results_carry_no_machine_paths():
    """The measured JSON is published with the docs: no home, work or temp dirs in it."""
    machine_path = re.compile(r'"(/(?:root|home|tmp|work|Users|var/folders)/[^"]*)"')
    found = {}
    for path in sorted((ROOT / "benchmarks/results").rglob("*.json")):
        hits = machine_path.findall(path.read_text())
        if hits:
            found[path.name] = hits[:3]
    assert not found, found
