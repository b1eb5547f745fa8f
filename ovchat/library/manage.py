"""What the library verbs do, as functions: list, show, remove, copy (alias).

Each returns plain data (dicts) that a verb prints as a table or as JSON.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from ..convert.recipe import recipe_label
from ..errors import ModelBusyError, ModelNotFoundError, OptionError, StorageError
from ..modeldir import EVAL_FILE, check_model_dir, read_manifest, read_model_info
from ..paths import models_dir
from .held import holders
from .names import looks_like_path, parse_ref
from .pull import adopt_known
from .resolve import find_entry, lookup
from .store import (
    Entry,
    delete_export,
    find_ref,
    list_entries,
    locked,
    now,
    read_entry,
    sharing,
    size_bytes,
    unlink_entry,
    write_entry,
)

GENERATION_KEYS = (
    "do_sample", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
    "max_new_tokens", "eos_token_id",
)  # fmt: skip


def describe(entry: Entry) -> dict[str, Any]:
    """One row of `ovchat list`: what a user wants to see about a library model."""
    row: dict[str, Any] = {
        "name": entry.ref,
        "default": entry.default,
        "alias_of": entry.alias_of,
        "path": str(entry.dir),
        "in_library": entry.managed,
        "created": entry.created,
        "size_bytes": size_bytes(entry.dir),
    }
    try:
        info = read_model_info(check_model_dir(entry.dir))
    except Exception as e:  # a damaged entry is listed, with what is wrong
        return {**row, "kind": None, "recipe": None, "context_length": None, "error": str(e)}
    asked = (info.manifest.get("recipe") or {}).get("asked")
    return {
        **row,
        "kind": info.kind,
        "recipe": recipe_label(asked) if asked else "unknown (not made by ovchat)",
        "context_length": info.context_length,
        "created": info.manifest.get("created") or entry.created,
        "error": None,
    }


def list_models() -> list[dict[str, Any]]:
    with contextlib.suppress(StorageError):
        adopt_known()
    return [describe(e) for e in list_entries()]


def show_model(model: str) -> dict[str, Any]:
    """The whole story of one model: entry, manifest, fidelity, template, generation."""
    found = lookup(model) if looks_like_path(model) else None
    if found is None:
        entry = find_entry(parse_ref(model), pull=False)
        path, base = entry.dir, describe(entry)
    else:
        path = found.path
        base = {"name": str(path), "path": str(path), "size_bytes": size_bytes(path)}
    info = read_model_info(check_model_dir(path))
    m = info.manifest
    recipe = m.get("recipe") or {}
    out = {
        **base,
        "display_name": info.name,
        "kind": info.kind,
        "context_length": info.context_length,
        "source": m.get("source"),
        "recipe_asked": recipe.get("asked"),
        "recipe_applied": recipe.get("applied"),
        "recipe_auto": recipe.get("auto"),  # --recipe auto: CPU, candidates, choice, why
        "fidelity": _json(path / EVAL_FILE),
        "chat_template": _chat_template(path),
        "generation": _generation(path),
        "embedding": m.get("embedding"),
        "versions": m.get("versions"),
        "created": m.get("created"),
        "export_seconds": m.get("export_seconds"),
    }
    return out


def _json(path: Path) -> Any:
    with contextlib.suppress(OSError, ValueError):
        return json.loads(path.read_text())
    return None


def _chat_template(path: Path) -> str | None:
    jinja = path / "chat_template.jinja"
    with contextlib.suppress(OSError):
        return jinja.read_text()
    cfg = _json(path / "tokenizer_config.json")
    template = cfg.get("chat_template") if isinstance(cfg, dict) else None
    return template if isinstance(template, str) else None


def _generation(path: Path) -> dict[str, Any] | None:
    gc = _json(path / "generation_config.json")
    if not isinstance(gc, dict):
        return None
    return {k: gc[k] for k in GENERATION_KEYS if k in gc}


def remove(model: str) -> dict[str, Any]:
    """Remove a library name; its export goes too when no other name points at it.

    Never deletes outside the library (a name for an outside path loses only the name), and
    refuses while a running server holds the export.
    """
    if looks_like_path(model):
        raise OptionError(
            f"{model} is a path, not a library name",
            "remove names only (see ovchat list); delete your own directories yourself",
            param="model",
        )
    ref = parse_ref(model)
    with locked():
        entry = find_ref(ref)
        if entry is None:
            raise ModelNotFoundError(f"no model named {model!r} in the library", "see ovchat list")
        others = sharing(entry)
        deletes = entry.managed and not others
        if deletes:
            busy = holders(entry.dir)
            if busy:
                who = ", ".join(
                    f"pid {s.get('pid')}" + (f" at {s['url']}" if s.get("url") else "")
                    for s in busy
                )
                raise ModelBusyError(
                    f"{entry.ref} is held by a running server ({who}); nothing was removed",
                    "stop that server first, or serve it no more",
                )
        size = size_bytes(entry.dir) if deletes else 0
        unlink_entry(entry)
        if deletes:
            delete_export(entry.dir)
    return {
        "name": entry.ref,
        "deleted_export": deletes,
        "freed_bytes": size,
        "path": str(entry.dir),
        "still_named": [e.ref for e in others],
    }


def copy(model: str, new: str) -> Entry:
    """Another name for a model (no copy of the weights). `model` may be a library name or
    an export's path (which then joins the library by name, staying where it is)."""
    target = parse_ref(new, param="new")
    found = lookup(model)
    src = find_ref(parse_ref(found.ref)) if found.ref else None
    if src is not None:
        tag = target.tag or src.tag
        path = src.dir
    else:
        asked = (read_manifest(found.path).get("recipe") or {}).get("asked") or {}
        tag = target.tag or str(asked.get("weight_format") or "latest")
        path = found.path
    with locked():
        if read_entry(target.name, tag) is not None:
            raise OptionError(
                f"{target.name}:{tag} is already in the library",
                "remove it first, or choose another name",
                param="new",
            )
        default = not any(e.default for e in list_entries(target.name))
        entry = Entry(
            target.name, tag, path, now(), default=default,
            alias_of=src.ref if src else str(found.path),
        )  # fmt: skip
        write_entry(entry)
    return entry


def library_dir() -> Path:
    return models_dir()
