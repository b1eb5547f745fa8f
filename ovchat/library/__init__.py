"""The model library: names → exported model dirs in ovchat's cache.

names.py    `name` / `name:tag`, what a tag means, close matches
store.py    entries on disk (one JSON per name:tag), atomic writes, safe deletes
default.py  the models the library knows without being told (the default model)
pull.py     pull (export into the library) and pull on first use
resolve.py  the one resolver: nothing, a path, or a name → an export dir
manage.py   list, show, remove, copy
held.py     which models running servers hold (for rm and ps)
"""

from .default import (
    DEFAULT_GENERATION,
    DEFAULT_LIBRARY_NAME,
    DEFAULT_MODEL_NAME,
    DEFAULT_RECIPE,
    default_gguf,
    default_model_dir,
)
from .names import Ref, parse_ref
from .pull import pull
from .resolve import Resolved, ensure_default_model, lookup, resolve
from .store import Entry

__all__ = [
    "DEFAULT_GENERATION",
    "DEFAULT_LIBRARY_NAME",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_RECIPE",
    "Entry",
    "Ref",
    "Resolved",
    "default_gguf",
    "default_model_dir",
    "ensure_default_model",
    "lookup",
    "parse_ref",
    "pull",
    "resolve",
]
