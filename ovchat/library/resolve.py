"""The one resolver: what a user names (`-m`, `ovchat.load(...)`, a server's models) → an
exported model dir.

- nothing → the default model (`smollm2`, prepared once on first use);
- a path (has a separator, starts with . or ~, or exists) → that export, as before;
- `name` or `name:tag` → the library's entry; a recipe tag (int4, int8, fp16, fp32) of a
  model whose source is known is pulled on first use;
- anything else → one line naming the close matches.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidModelError, ModelNotFoundError, OptionError, StorageError
from ..modeldir import check_model_dir, is_model_dir
from ..paths import models_dir
from ..progress import Progress
from .default import DEFAULT_LIBRARY_NAME, KNOWN
from .names import AUTO_TAG, RECIPE_TAGS, Ref, close_matches, looks_like_path, parse_ref
from .pull import adopt_known, pull_on_first_use
from .store import Entry, find_ref, list_entries


@dataclass(frozen=True)
class Resolved:
    """An export dir, and the library name it was found by (None for a path)."""

    path: Path
    ref: str | None = None


def resolve(model: str | Path | None, progress: Progress | None = None) -> Path:
    """Return an exported model dir for `model` (None = the default model)."""
    return lookup(model, progress).path


def lookup(model: str | Path | None, progress: Progress | None = None) -> Resolved:
    """`resolve`, keeping the library name the model was found by."""
    text = "" if model is None else str(model).strip()
    if not text:
        text = DEFAULT_LIBRARY_NAME
    if isinstance(model, Path) or looks_like_path(text) or Path(text).expanduser().exists():
        return Resolved(resolve_path(Path(text)))
    try:
        ref = parse_ref(text)
    except OptionError:
        raise _unknown(text) from None
    entry = find_entry(ref, progress)
    return Resolved(check_model_dir(entry.dir), entry.ref)


def find_entry(ref: Ref, progress: Progress | None = None, pull: bool = True) -> Entry:
    """The library entry for `ref`, pulled first (unless not `pull`) if it is a recipe tag
    of a model whose source is known."""
    known = KNOWN.get(ref.name)
    with contextlib.suppress(StorageError):  # a read-only library still serves what it has
        adopt_known()
    if known is not None and ref.tag is None:
        # the recipe measured fastest among the faithful on this machine (pull --recipe auto)
        # once it is there, else the default recipe
        measured = find_ref(ref.with_tag(AUTO_TAG))
        auto = measured is not None and measured.dir.is_dir()
        ref = ref.with_tag(AUTO_TAG if auto else known.default_tag)
    entry = find_ref(ref)
    if known is not None and ref.tag in known.dirs:
        path = models_dir() / known.dirs[ref.tag]
        if known.complete(path):
            return entry or Entry(known.name, ref.tag, path, "", default=True)
        entry = None  # missing, or prepared by an older version: prepare it (again)
    if entry is not None:
        if not entry.dir.is_dir():
            raise InvalidModelError(
                f"the library's {entry.ref} points at {entry.dir}, which is missing",
                f"remove it (ovchat rm {entry.ref}) and pull it again",
            )
        return entry
    pulled = pull_on_first_use(ref, progress) if pull else None
    if pulled is None:
        raise _unknown(str(ref))
    return pulled


def library_names() -> list[str]:
    """Every name a user could type: entries with and without tags, known models' tags."""
    out: set[str] = set()
    for e in list_entries():
        out.update((e.ref, e.name))
    for k in KNOWN.values():
        out.add(k.name)
        out.update(f"{k.name}:{t}" for t in RECIPE_TAGS)
    return sorted(out)


def _unknown(text: str) -> ModelNotFoundError:
    word = text.lower()
    matches = close_matches(word, library_names())
    near = f" (close: {', '.join(matches)})" if matches else ""
    return ModelNotFoundError(
        f"no model named {text!r} in the library{near}",
        "see ovchat list; add one with ovchat pull SOURCE NAME, or give an export's path",
        param="model",
    )


def resolve_path(p: Path) -> Path:
    """A path the user gave: an export dir, or a clear hint about what it is instead."""
    p = p.expanduser()
    if p.is_dir():
        if is_model_dir(p):
            return check_model_dir(p)
        if (p / "config.json").is_file():
            raise InvalidModelError(
                f"{p} is a Hugging Face model, not an exported one",
                f"pull it into the library (ovchat pull {p}) or export it (ovchat export {p} "
                f"{p.name}-ov)",
            )
        return check_model_dir(p)  # raises with the list of missing files
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise ModelNotFoundError(f"{p} does not exist", "check the path")
        raise InvalidModelError(
            f"{p} is a GGUF file, not an exported model",
            f"pull it into the library (ovchat pull {p}) or export it (ovchat export {p} "
            f"{p.stem}-ov)",
        )
    if p.exists():
        raise InvalidModelError(f"{p} is not a model directory", "give an exported model dir")
    text = str(p)
    if "/" in text and not text.startswith((".", "/", "~")) and text.count("/") == 1:
        raise ModelNotFoundError(
            f"{text} is not a local directory",
            f"if it is a Hugging Face id, pull it first: ovchat pull {text}",
        )
    raise ModelNotFoundError(f"model directory {p} does not exist", "check the path")


def ensure_default_model(progress: Progress | None = None) -> Path:
    """Prepare the default model once (GGUF → HF → int4 IR); later calls return at once."""
    known = KNOWN[DEFAULT_LIBRARY_NAME]
    return find_entry(Ref(known.name, known.default_tag), progress).dir
