"""What a server serves: `ModelSpec`s, one per export, from library names and paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError
from ..library import lookup
from ..library.store import list_entries
from ..modeldir import model_kind, read_model_info


@dataclass(frozen=True)
class ModelSpec:
    """One model a server serves: the id clients use, its export, other names it answers to."""

    id: str
    path: Path
    aliases: tuple[str, ...] = ()


def model_specs(models: list[str] | None, library: bool) -> tuple[ModelSpec, ...]:
    """What the server serves: each of `models` (a library name or a path; none: the default
    model), then with `library` every library model. Names that reach the same export are one
    model answering to all of them; its id is its library name:tag (else its own name)."""
    wanted: list[str | None] = list(models or [])
    if library:
        # Chat models first: with no model named, the first one is the default (the web page's).
        entries = sorted(list_entries(), key=lambda e: (model_kind(e.dir) != "chat", e.ref))
        refs = [e.ref for e in entries]
        if not refs:
            raise ModelNotFoundError("the library is empty", "add a model: ovchat pull SOURCE NAME")
        wanted += refs
    specs: dict[Path, ModelSpec] = {}
    for name in wanted or [None]:
        found = lookup(name)
        info = read_model_info(found.path)
        aliases = {info.name, found.path.name, *([name] if name else [])}
        if found.ref:
            base = found.ref.split(":")[0]
            if lookup(base).path == found.path:  # the name's default tag
                aliases.add(base)
        old = specs.get(found.path)
        if old is not None:
            specs[found.path] = ModelSpec(old.id, old.path, tuple(sorted({*old.aliases, *aliases})))
            continue
        ident = found.ref or info.name
        specs[found.path] = ModelSpec(ident, found.path, tuple(sorted(aliases - {ident})))
    return tuple(specs.values())
