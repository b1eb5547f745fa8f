"""Library names: `name` or `name:tag`, what a tag means, and close matches for typos.

A tag that is a weight format (`int4`, `int8`, `fp16`, `fp32`) names that recipe of the
model; any other tag is the user's own label. A name without a tag means its default tag.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ..convert.recipe import WEIGHT_FORMATS, Recipe
from ..errors import OptionError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RECIPE_TAGS = WEIGHT_FORMATS  # tags a known model can be pulled as on first use
AUTO_TAG = "auto"  # the recipe `pull --recipe auto` measured fastest among the faithful here
MAX_MATCHES = 4  # close matches named in an "unknown model" error
MATCH_CUTOFF = 0.5  # difflib's similarity ratio below which a name is not "close"


@dataclass(frozen=True)
class Ref:
    """A library name and an optional tag (None: the name's default tag)."""

    name: str
    tag: str | None = None

    def __str__(self) -> str:
        return self.name if self.tag is None else f"{self.name}:{self.tag}"

    def with_tag(self, tag: str) -> Ref:
        return replace(self, tag=tag)


def looks_like_path(text: str) -> bool:
    """A path rather than a name: a separator, a leading . or ~, an absolute path, a .gguf."""
    return (
        "/" in text
        or "\\" in text
        or text.startswith((".", "~"))
        or os.path.isabs(text)
        or text.lower().endswith(".gguf")
    )


def parse_ref(text: str, param: str = "model") -> Ref:
    """`name` or `name:tag` (case-insensitive); letters, digits, '.', '_' and '-'."""
    name, sep, tag = text.strip().lower().partition(":")
    for part, what in ((name, "name"), (tag if sep else "x", "tag")):
        if not NAME_PATTERN.match(part):
            raise OptionError(
                f"{text!r} is not a valid model {what}",
                "names and tags use letters, digits, '.', '_' and '-' (e.g. smollm2:int8)",
                param=param,
            )
    return Ref(name, tag if sep else None)


def name_from_source(source: str) -> str:
    """A library name for a source: its last path part, lowercased ("HuggingFaceTB/SmolLM2-
    360M-Instruct" → "smollm2-360m-instruct", "phi.Q4_0.gguf" → "phi.q4_0")."""
    base = source.rstrip("/\\").replace("\\", "/").split("/")[-1]
    if base.lower().endswith(".gguf"):
        base = base[: -len(".gguf")]
    name = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._")[:64]
    return name or "model"


def tag_for(recipe: Recipe) -> str:
    """The tag a pull gets when none is given: its weight format."""
    return recipe.weight_format


def check_tag_recipe(tag: str, recipe: Recipe) -> None:
    """A weight-format tag must be that weight format (`x:int8` is never an int4 export)."""
    if tag in RECIPE_TAGS and tag != recipe.weight_format:
        raise OptionError(
            f"the tag {tag!r} names the {tag} recipe, but the recipe asks for "
            f"{recipe.weight_format}",
            f"use the tag {recipe.weight_format!r} or another tag, or ask for {tag}",
            param="weight_format",
        )


def recipe_for_tag(base: Recipe, tag: str) -> Recipe:
    """The model's recipe (`base`) at the weight format `tag` names."""
    return replace(base, weight_format=tag)


def close_matches(word: str, candidates: Iterable[str]) -> list[str]:
    """Names like `word` (typos, a missing tag), best first."""
    pool = sorted(set(candidates))
    found = difflib.get_close_matches(word, pool, n=MAX_MATCHES, cutoff=MATCH_CUTOFF)
    prefix = [c for c in pool if c.startswith(word) and c not in found]
    return (found + prefix)[:MAX_MATCHES]


def is_inside(path: Path, root: Path) -> bool:
    """`path` (symlinks followed) is strictly inside `root`."""
    try:
        return root.resolve() in path.resolve().parents
    except OSError:
        return False
