"""Where an export is written until it is whole: a hidden sibling work dir, owned through a
lock its process holds, moved into place at the end (export.py). Nothing half-written is
ever left under the output's name."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# An export is built in a hidden sibling `.NAME.partial-TOKEN`, owned through the lock file
# `.NAME.partial-TOKEN.lock` that its process holds (taken before the dir exists, released
# when the process ends, even by SIGKILL). A partial dir whose lock can be taken is left
# over by a dead export and is removed by the next export to the same place.
PARTIAL = "partial"
LOCK_SUFFIX = ".lock"


@contextmanager
def owned_workdir(out: Path) -> Iterator[Path]:
    """A fresh hidden work dir beside `out`, locked by this process while it exists; removed
    on the way out, whatever happens (a SIGKILL leaves it to `remove_leftovers`)."""
    from filelock import FileLock

    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    work = out.parent / f".{out.name}.{PARTIAL}-{token}"
    lock = FileLock(str(work) + LOCK_SUFFIX)
    lock.acquire(timeout=0)  # the lock first: the dir never exists unowned
    try:
        work.mkdir()
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)


def remove_leftovers(out: Path) -> list[Path]:
    """Remove the work dirs of exports to `out` that died (their owner's lock is free), and
    the old copies a killed `force` replacement left; return what was removed."""
    from filelock import FileLock, Timeout

    removed: list[Path] = []
    for d in out.parent.glob(f".{out.name}.{PARTIAL}-*"):
        if d.name.endswith(LOCK_SUFFIX):
            if not d.with_name(d.name.removesuffix(LOCK_SUFFIX)).exists():
                with contextlib.suppress(Timeout), FileLock(str(d), timeout=0):
                    d.unlink(missing_ok=True)  # a lock whose dir is gone, owner dead
            continue
        lock = FileLock(str(d) + LOCK_SUFFIX)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # a live export owns it
        try:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
        finally:
            lock.release()
            Path(lock.lock_file).unlink(missing_ok=True)
    for d in out.parent.glob(f".{out.name}.old-*"):
        pid = d.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def alive(pid: int) -> bool:
    """Whether process `pid` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True


def replace_dir(new: Path, out: Path) -> None:
    if out.exists():
        trash = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(trash)
        new.rename(out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        new.rename(out)
