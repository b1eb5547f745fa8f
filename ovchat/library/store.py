"""The library on disk: one small JSON entry per `name:tag`, pointing at an export dir.

    $OVCHAT_HOME/models/
        smollm2-135m-instruct-int4/     an export (the default model keeps its old dir)
        phi3-int8/                      exports that `pull` made
        library/smollm2/int4.json       {"dir": "smollm2-135m-instruct-int4", ...}
        library/chat/int4.json          an alias (`cp`): the same dir, no copy

Entries are written atomically (a temp file renamed into place) under one short lock, so
a reader never sees half an entry. Removing a name deletes its export only when no other
name points at it, and never anything outside the library.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelNotFoundError, StorageError, disk_problem
from ..paths import file_lock, models_dir
from .names import Ref, is_inside

ENTRIES_DIR = "library"
ENTRY_SUFFIX = ".json"


@dataclass(frozen=True)
class Entry:
    """One library name: `name:tag` → an export dir (in the library, or an outside path)."""

    name: str
    tag: str
    dir: Path
    created: str
    default: bool = False  # the name's default tag (the first one it got)
    alias_of: str | None = None  # the name it was copied from (`cp`), for display

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def managed(self) -> bool:
        """Its export lives in the library (removing the last name deletes it)."""
        return is_inside(self.dir, models_dir())

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        # In-library dirs are stored relative: the library can move with OVCHAT_HOME.
        d["dir"] = str(self.dir.relative_to(models_dir())) if self.managed else str(self.dir)
        return d


def entries_root() -> Path:
    return models_dir() / ENTRIES_DIR


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def storage(action: str) -> Iterator[None]:
    """A full or read-only disk → one StorageError line naming the library."""
    try:
        yield
    except StorageError:
        raise
    except Exception as e:
        why = disk_problem(e)
        if why is None:
            raise
        raise StorageError(
            f"cannot {action} in the model library {models_dir()}: {why}",
            "free some space, or point OVCHAT_HOME at a writable disk",
        ) from e


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """The library's short lock: entry writes and removals, one process at a time."""
    with storage("write"):
        lock = models_dir() / ".library.lock"
        with file_lock(lock):
            yield


def _read(path: Path) -> Entry | None:
    try:
        d = json.loads(path.read_text())
        raw = Path(d["dir"])
        return Entry(
            name=str(d["name"]),
            tag=str(d["tag"]),
            dir=raw if raw.is_absolute() else models_dir() / raw,
            created=str(d.get("created") or ""),
            default=bool(d.get("default")),
            alias_of=d.get("alias_of"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged entry is not a name (list shows what is readable)


def read_entry(name: str, tag: str) -> Entry | None:
    return _read(entries_root() / name / f"{tag}{ENTRY_SUFFIX}")


def list_entries(name: str | None = None) -> list[Entry]:
    """Every entry (or those of `name`), sorted by name then tag."""
    root = entries_root()
    dirs = [root / name] if name else sorted(p for p in root.glob("*") if p.is_dir())
    out = []
    for d in dirs:
        for f in sorted(d.glob(f"*{ENTRY_SUFFIX}")):
            e = _read(f)
            if e is not None:
                out.append(e)
    return out


def find_ref(ref: Ref) -> Entry | None:
    """The entry `ref` names; a name alone means its default tag."""
    if ref.tag is not None:
        return read_entry(ref.name, ref.tag)
    tags = list_entries(ref.name)
    if not tags:
        return None
    chosen = [e for e in tags if e.default] or (tags if len(tags) == 1 else [])
    if not chosen:
        names = ", ".join(e.ref for e in tags)
        raise ModelNotFoundError(
            f"{ref.name} has several tags ({names}) and no default",
            f"name one, e.g. {tags[0].ref}",
            param="model",
        )
    return chosen[0]


def write_entry(entry: Entry) -> None:
    """Add or replace an entry, atomically (the caller holds `locked()`)."""
    path = entries_root() / entry.name / f"{entry.tag}{ENTRY_SUFFIX}"
    with storage("write"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entry.to_json(), f, indent=2)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def sharing(entry: Entry) -> list[Entry]:
    """Other names that point at the same export."""
    try:
        target = entry.dir.resolve()
    except OSError:
        return []
    return [e for e in list_entries() if e.ref != entry.ref and e.dir.resolve() == target]


def unlink_entry(entry: Entry) -> None:
    """Remove the name only (the caller holds `locked()`)."""
    path = entries_root() / entry.name / f"{entry.tag}{ENTRY_SUFFIX}"
    with storage("remove a model"):
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the name's last tag: drop its (now empty) dir


def delete_export(path: Path) -> None:
    """Delete an export that lives in the library: renamed aside first, so that a half-deleted
    dir never looks like a model. Refuses anything outside the library."""
    root = models_dir()
    if not is_inside(path, root) or path.resolve().parent != root.resolve():
        raise StorageError(f"refusing to delete {path}: it is not an export in {root}")
    with storage("remove a model"):
        if path.is_symlink():
            path.unlink()
            return
        trash = path.with_name(f".{path.name}.rm-{os.getpid()}")
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def new_dir(name: str, tag: str) -> Path:
    """A free dir name for a new export of `name:tag` (an older one may still be in use)."""
    base = f"{name}-{tag}"
    root = models_dir()
    taken = {e.dir.name for e in list_entries()}
    for i in range(1, 1000):
        candidate = root / (base if i == 1 else f"{base}-{i}")
        if candidate.name not in taken and not candidate.exists():
            return candidate
    raise StorageError(f"no free directory name for {name}:{tag} in {root}")


def size_bytes(path: Path) -> int:
    """Bytes on disk of an export (every file in it)."""
    total = 0
    with contextlib.suppress(OSError):
        for f in path.rglob("*"):
            with contextlib.suppress(OSError):
                if f.is_file():
                    total += f.stat().st_size
    return total
