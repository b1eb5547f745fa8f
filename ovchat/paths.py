"""Where ovchat keeps its files: XDG cache dir, overridable by OVCHAT_HOME."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "OVCHAT_HOME"


def home() -> Path:
    """Root of ovchat's per-user cache: $OVCHAT_HOME, else $XDG_CACHE_HOME/ovchat."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ovchat"


def models_dir() -> Path:
    """Exported models that ovchat prepared itself (the default model)."""
    return home() / "models"


def compiled_cache_dir() -> Path:
    """OpenVINO's CACHE_DIR for compiled blobs, so a second load is fast."""
    return home() / "ov_cache"


def history_file() -> Path:
    """Input history of `ovchat chat`."""
    return home() / "chat_history"
