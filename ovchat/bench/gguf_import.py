"""The same GGUF file on both sides of `ovchat bench --gguf FILE`: llama.cpp runs FILE, ovchat
runs its own import of FILE (the `gguf` weight format: the file's own blocks), exported once
into ovchat's cache (`<home>/bench/gguf/`) and reused while the file is unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..modeldir import is_model_dir
from ..paths import file_lock, home
from ..progress import Progress


def import_dir(gguf: Path) -> Path:
    """Where ovchat's import of `gguf` is kept (keyed by the file's path, size and time)."""
    src = gguf.expanduser().resolve()
    st = src.stat()
    tag = hashlib.sha1(f"{src}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]
    return home() / "bench" / "gguf" / f"{src.stem}-{tag}"


def imported(gguf: Path, progress: Progress) -> Path:
    """ovchat's import of `gguf` (exported now if not yet in the cache)."""
    from ..convert.export import export
    from ..convert.recipe import GGUF_FORMAT, Recipe

    out = import_dir(gguf)
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(out.name + ".lock")):
        if not is_model_dir(out):
            progress(f"importing {gguf.name} for ovchat (once) → {out}")
            export(str(gguf.expanduser().resolve()), out, Recipe(weight_format=GGUF_FORMAT),
                   force=True, name=gguf.stem, progress=progress)  # fmt: skip
    return out


def source_gguf(manifest: dict[str, Any]) -> Path | None:
    """The GGUF file an export was made from (None: not from a GGUF, or the file is gone)."""
    src = manifest.get("source") or {}
    if src.get("kind") == "gguf" and Path(str(src.get("model"))).is_file():
        return Path(str(src["model"])).resolve()
    return None
