"""Calibration text for data-aware weight compression (`--dataset`), never the eval corpus.

`ovchat eval` measures fidelity on CPython's pydoc_data and answers on evals/prompts.py;
calibrating on either would flatter the recipe. The sources here:

- a text file: paragraphs separated by blank lines (or one JSON list of strings);
- "builtin": offline English prose, the docstrings of installed third-party packages
  (numpy, click, rich, jinja2, pydantic, ...), read with `ast` (nothing imported), prose only,
  cut to ~1,200 characters, a deterministic spread; plus chat-formatted requests
  (CALIB_PROMPTS, none of them an eval prompt) when the model has a chat template;
- "auto": nncf/optimum's own, text the model generates at export time (offline).
optimum's OVWeightQuantizationConfig takes the dataset as a list of strings.
"""

from __future__ import annotations

import ast
import json
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import OptionError

BUILTIN = "builtin"
AUTO = "auto"
DEFAULT_SAMPLES = 128
MAX_CHARS = 1200
MIN_CHARS = 300
SCAN_FACTOR = 8  # read packages until 8x the texts wanted are found
PACKAGES = ("numpy", "click", "rich", "jinja2", "fastapi", "pydantic", "httpx", "anyio",
            "markdown_it", "fsspec", "filelock", "dateutil", "joblib", "idna", "yaml",
            "sympy", "networkx", "scipy", "pygments", "requests", "packaging")  # fmt: skip
TOPICS = ("the moon", "a rainy day", "friendship", "the ocean", "a busy city", "winter",
          "a small garden", "coffee", "the mountains", "trains", "music", "birds")  # fmt: skip
SUBJECTS = ("gravity", "electricity", "the immune system", "inflation", "volcanoes",
            "machine learning", "the internet", "vaccines", "earthquakes", "magnets")  # fmt: skip
TASKS = ("reverses a string", "counts the vowels in a word", "computes a factorial",
         "finds the largest number in a list", "removes duplicates from a list")  # fmt: skip
CALIB_PROMPTS = (
    [f"Write a few lines of poetry about {t}." for t in TOPICS]
    + [f"Explain {s} to a twelve-year-old." for s in SUBJECTS]
    + [f"What are three interesting facts about {s}?" for s in SUBJECTS]
    + [f"Write a JavaScript function that {t}." for t in TASKS]
    + [f"Describe {t} in one paragraph." for t in TOPICS]
)


def docstrings(n: int, max_chars: int = MAX_CHARS) -> list[str]:
    """Prose docstrings of installed packages (a deterministic spread over what is found)."""
    site = Path(sysconfig.get_paths()["purelib"])
    found: list[str] = []
    for pkg in PACKAGES:
        root = site / pkg
        if not root.is_dir():
            continue
        for f in sorted(root.rglob("*.py")):
            if "test" in f.name or "tests" in f.parts:
                continue
            try:
                tree = ast.parse(f.read_text(encoding="utf-8", errors="replace"))
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef)):  # fmt: skip
                    d = ast.get_docstring(node)
                    if d and len(d) >= MIN_CHARS and sum(c.isalpha() for c in d) > 0.6 * len(d):
                        found.append(d[:max_chars])
        if len(found) >= SCAN_FACTOR * n:  # enough to spread over; the rest is not read
            break
    step = max(1, len(found) // max(1, n))
    return found[::step][:n]


def chat_texts(template_dir: Path, n: int) -> list[str]:
    """CALIB_PROMPTS through the model's chat template (none when it has none)."""
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(template_dir))
        if not tok.chat_template:
            return []
        return [
            str(
                tok.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
            )
            for p in CALIB_PROMPTS[:n]
        ]
    except Exception:  # a tokenizer that cannot render: prose only
        return []


def load_dataset(
    spec: str, model_dir: Path | None = None, n: int = DEFAULT_SAMPLES
) -> list[str] | str:
    """`--dataset`: "auto" as is (optimum collects it), "builtin", or a text/JSON file."""
    if spec == AUTO:
        return AUTO
    if spec == BUILTIN:
        chat = chat_texts(model_dir, n // 4) if model_dir is not None else []
        texts = docstrings(n - len(chat))
        out = [x for pair in zip(texts, chat, strict=False) for x in pair]
        out += texts[len(chat) :] + chat[len(texts) :]
        if not out:
            raise OptionError("no built-in calibration text found", param="dataset")
        return out
    path = Path(spec).expanduser()
    if not path.is_file():
        raise OptionError(
            f"dataset {spec!r} is neither a file nor {BUILTIN!r} / {AUTO!r}",
            "give a text file (paragraphs separated by blank lines), builtin or auto",
            param="dataset",
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise OptionError(f"{path} is not valid JSON: {e}", param="dataset") from e
        if not (isinstance(data, list) and all(isinstance(x, str) for x in data)):
            raise OptionError(f"{path} must hold a JSON list of strings", param="dataset")
        texts = [x for x in data if x.strip()]
    else:
        texts = [p.strip() for p in text.split("\n\n") if p.strip()]
    if not texts:
        raise OptionError(f"{path} holds no text", param="dataset")
    return texts[:n]


def for_recipe(recipe: Any, model: str, say: Callable[[str], None]) -> list[str] | str | None:
    """The calibration texts a recipe asks for (None: data-free)."""
    if not recipe.dataset or recipe.weight_format != "int4":
        return None
    local = Path(model)
    data = load_dataset(recipe.dataset, local if local.is_dir() else None)
    say(f"calibration text: {recipe.dataset} ({'auto' if isinstance(data, str) else len(data)})")
    return data
