"""Which models running servers hold, so that `rm` never pulls an export from under one and
`ps` can say what is loaded.

Each server writes `$OVCHAT_HOME/servers/<id>.json` (pid, URL, its models and which are
loaded) and holds a lock on `<id>.lock` for as long as it runs. A record whose lock can be
taken is left over from a server that died: it is ignored and cleaned up. The lock, not
the pid, says "alive": it works on every OS and cannot be fooled by a reused pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..paths import home

SERVERS_DIR = "servers"


def servers_dir() -> Path:
    return home() / SERVERS_DIR


class Registration:
    """A running server's record; `update()` it as models load and unload, `close()` at exit.

    Best effort: a cache dir that cannot be written only loses `ps`/`rm` protection.
    """

    def __init__(self, url: str | None = None) -> None:
        from filelock import FileLock, Timeout

        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.url = url
        self.models: list[dict[str, Any]] = []
        self._lock: Any = None
        self._path = servers_dir() / f"{self.id}.json"
        try:
            servers_dir().mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(servers_dir() / f"{self.id}.lock"), timeout=0)
            lock.acquire()
            self._lock = lock
        except (OSError, Timeout):
            self._lock = None

    def update(
        self, models: Sequence[dict[str, Any]] | None = None, url: str | None = None
    ) -> None:
        """Rewrite the record: `models` is a list of {"id", "dir", "kind", "loaded", ...}."""
        if models is not None:
            self.models = [dict(m) for m in models]
        if url is not None:
            self.url = url
        if self._lock is None:
            return
        record = {"pid": os.getpid(), "url": self.url, "models": self.models}
        with contextlib.suppress(OSError):
            fd, tmp = tempfile.mkstemp(prefix=f".{self.id}.", dir=servers_dir())
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, indent=2)
            os.replace(tmp, self._path)

    def close(self) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            self._path.unlink(missing_ok=True)
        lock_file = Path(self._lock.lock_file)
        self._lock.release()
        with contextlib.suppress(OSError):
            lock_file.unlink(missing_ok=True)
        self._lock = None


def _alive(lock_path: Path) -> bool:
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False


def running_servers() -> list[dict[str, Any]]:
    """The records of the servers running now (stale ones are removed on the way)."""
    out = []
    for record in sorted(servers_dir().glob("*.json")):
        lock = record.with_suffix(".lock")
        if not _alive(lock):
            with contextlib.suppress(OSError):
                record.unlink()
                lock.unlink(missing_ok=True)
            continue
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(record.read_text())
            if isinstance(data, dict):
                out.append(data)
    return out


def holders(path: Path) -> list[dict[str, Any]]:
    """Running servers that serve the export at `path` (loaded or not)."""
    try:
        target = str(path.resolve())
    except OSError:
        return []
    return [
        s
        for s in running_servers()
        if any(str(m.get("dir")) == target for m in s.get("models") or [])
    ]
