"""Where ovchat keeps its files, and a lock that works on every OS.

The cache root is $OVCHAT_HOME, else the platform's user cache dir (XDG on Linux,
~/Library/Caches on macOS, %LOCALAPPDATA% on Windows, via platformdirs).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ENV_HOME = "OVCHAT_HOME"
LOCK_TIMEOUT_SECONDS = -1  # wait as long as the other process needs (an export: minutes)


def home() -> Path:
    """Root of ovchat's per-user cache: $OVCHAT_HOME, else the platform's cache dir."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ovchat", appauthor=False))


def models_dir() -> Path:
    """Exported models that ovchat keeps itself (the default model, pulled models)."""
    return home() / "models"


def compiled_cache_dir() -> Path:
    """OpenVINO's CACHE_DIR for compiled blobs, so a second load is fast."""
    return home() / "ov_cache"


def history_file() -> Path:
    """Input history of `ovchat chat`."""
    return home() / "chat_history"


@contextmanager
def file_lock(path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """One holder at a time across processes (filelock: fcntl on POSIX, msvcrt on Windows)."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path), timeout=timeout):
        yield


def portable(value: Any) -> Any:
    """`value` (a report: dicts, lists, strings) with this machine's paths written so that
    they mean the same elsewhere (the reports `--json` writes): under the cache root as
    $OVCHAT_HOME/..., under the Python environment as $PYTHON_PREFIX/..., under the temp dir
    as $TMPDIR/..., under the user's home as ~/..."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable(v) for v in value]
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    roots = (
        (str(home()), "$OVCHAT_HOME"),
        (sys.prefix, "$PYTHON_PREFIX"),  # the venv: packages' own files (a shipped GGUF)
        (tempfile.gettempdir(), "$TMPDIR"),
        (str(Path.home()), "~"),
    )
    for root, name in roots:
        if value == root or value.startswith(root.rstrip("/") + "/"):
            return name + value[len(root.rstrip("/")) :]
    return value
