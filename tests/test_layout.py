"""The shape of the code, checked: a runtime without torch, no import circles, small modules,
library errors that speak of the library (not of CLI flags)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ovchat"
EXPORT_STACK = ("torch", "transformers", "optimum", "nncf", "accelerate")
MAX_MODULE_LINES = 400

PROBE = """
import sys
from ovchat.cli import main
rc = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
print("HEAVY:" + ",".join(heavy))
sys.exit(rc)
"""


def _probe(*argv: str, block: bool = False) -> subprocess.CompletedProcess[str]:
    code = PROBE % (EXPORT_STACK,)
    if block:  # as if the export stack were not installed at all
        code = (
            "import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            f"        if name.split('.')[0] in {EXPORT_STACK!r}:\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Block())\n" + code
        )
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300
    )


def test_import_ovchat_loads_no_export_stack():
    r = subprocess.run(
        [sys.executable, "-c", "import sys, ovchat; print(sorted(m for m in sys.modules))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    loaded = {m.split(".")[0] for m in eval(r.stdout)}
    assert "ovchat" in loaded
    assert not loaded & set(EXPORT_STACK), loaded & set(EXPORT_STACK)


@pytest.mark.parametrize("block", [False, True], ids=["installed", "not-installed"])
def test_generate_on_an_export_needs_no_torch(tiny_llama, block):
    r = _probe("generate", "hi", "-m", str(tiny_llama), "-n", "4", "-t", "0", block=block)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "HEAVY:", r.stdout
    assert len(r.stdout.strip().splitlines()) >= 2  # the answer came first


def test_export_without_the_extra_says_what_to_install(tiny_llama_hf, tmp_path):
    r = _probe("export", str(tiny_llama_hf), str(tmp_path / "out"), block=True)
    assert r.returncode == 2, r.stderr
    assert "pip install 'ovchat[export]'" in r.stderr and "Traceback" not in r.stderr


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """ovchat modules that `path` imports, at import time or later: imports inside functions
    count too (a circle closed at call time is still a circle); TYPE_CHECKING blocks do not."""
    tree = ast.parse(path.read_text())
    me = _name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if mod.startswith("ovchat"):
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("ovchat"))
    names = {_name(p) for p in _modules()}
    return {m for m in out if m in names and m != me}


def _graph() -> dict[str, set[str]]:
    return {_name(p): _imports(p) for p in _modules()}


def test_the_import_scan_sees_imports_inside_functions():
    """The check below must see a lazy import: model.py imports embedmodel inside `load`."""
    assert "ovchat.embedmodel" in _imports(PACKAGE / "model.py")
    top_level = {
        node.module
        for node in ast.parse((PACKAGE / "model.py").read_text()).body
        if isinstance(node, ast.ImportFrom)
    }
    assert "embedmodel" not in top_level


def test_no_import_circles():
    """No module reaches itself through the modules it imports, lazy imports included."""
    graph = _graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    # A package importing its own submodules is how packages work; anything else is a circle.
    circles = [
        (a, b)
        for a, deps in graph.items()
        for b in deps
        if not b.startswith(a + ".") and not a.startswith(b + ".") and reaches(b, a, set())
    ]
    assert not circles, circles


# Each layer imports only from its own and the ones below: the engine, conversion and the
# library know nothing of the Python API; the API nothing of the server, bench or eval; those
# nothing of the command line (verbs/), and verbs/ nothing of the dispatcher (cli.py).
LAYERS = {
    "cli": 4,
    "__main__": 4,
    "verbs": 3,
    "serve": 2,
    "bench": 2,
    "evals": 2,
    "": 1,  # the ovchat package itself: the public API it re-exports
    "model": 1,
    "modelbase": 1,
    "embedmodel": 1,
    "taskmodel": 1,
    "rerankmodel": 1,
    "speechmodel": 1,
    "conversation": 1,
}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1] if len(parts) > 1 else "", 0)


def test_no_module_imports_from_a_layer_above_it():
    upward = [(a, b) for a, deps in _graph().items() for b in deps if _layer(b) > _layer(a)]
    assert not upward, upward


def test_no_module_is_too_long():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_library_errors_give_no_cli_flags():
    """Outside the CLI (cli.py, verbs/), an error's text names no flag: a Python user has none.

    A whole command ("re-export it: ovchat export SRC DIR --force") is fine: it is a command.
    """
    bad = []
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "verbs" or rel.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("Error")):
                continue
            for const in ast.walk(node):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    text = const.value
                    if "ovchat " in text or "pip install" in text:
                        continue
                    if " --" in f" {text}" or " -p " in f" {text} ":
                        bad.append(f"{rel}:{node.lineno}: {text!r}")
    assert not bad, bad
