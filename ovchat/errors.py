"""The few exceptions ovchat raises: each carries what is wrong and how to fix it.

Hints here speak of the library (arguments, files, commands), never of CLI flags: the CLI
adds those at its boundary, from `param` (the argument the error is about).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence


class OvchatError(Exception):
    """Base class. `str(err)` is one line: the problem, then the fix.

    `param` names the argument or option at fault (e.g. "temperature", "device"), so that a
    front end can point at its own spelling of it (a CLI flag, an HTTP field).
    """

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        param: str | None = None,
        choices: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param
        self.choices = tuple(choices)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ModelNotFoundError(OvchatError):
    """The named model does not exist (no such path, unknown hub id or library name)."""


class InvalidModelError(OvchatError):
    """A path exists but is not a usable ovchat/OpenVINO model (missing or corrupted files)."""


class UnsupportedModelError(OvchatError):
    """The architecture or file type cannot be exported."""


class ExportError(OvchatError):
    """Conversion or compression failed."""


class MissingExtraError(OvchatError):
    """An optional part of ovchat is needed but not installed (e.g. the export stack)."""


class DeviceError(OvchatError):
    """The requested OpenVINO device is not present."""


class OptionError(OvchatError):
    """An option value is out of range or malformed."""


class ContextLengthError(OptionError):
    """The prompt does not fit in the model's context window."""


class EngineError(OvchatError):
    """The engine failed while generating (the request is lost, the engine may go on)."""


class StorageError(OvchatError):
    """ovchat's own files cannot be written (a read-only or full disk, no permission)."""


class ModelBusyError(OvchatError):
    """The model is held by a running server (it cannot be removed now)."""


OV_NOISE = ("Exception from", "Check '", 'Check "', "[ GENERAL_ERROR ]", "Traceback")
MAX_REASON = 300  # characters of a library's message kept in ours


def reason(e: BaseException) -> str:
    """The informative line of a library's exception (OpenVINO puts source paths first)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(OV_NOISE) and not ln.endswith(".cpp")]
    text = (useful or lines or [type(e).__name__])[-1]
    return text[:MAX_REASON]


# errno values that mean "this disk will not take it", rather than a bug.
DISK_ERRNOS = {
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def disk_problem(e: BaseException) -> str | None:
    """What is wrong with the disk, if `e` is a full or read-only disk (an OSError, or a
    library's RuntimeError that quotes the OS's message); else None."""
    if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
        return DISK_ERRNOS[e.errno]
    text = str(e)
    for code in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
        if os.strerror(code) in text:
            return DISK_ERRNOS[code]
    return None


def require(module: str, extra: str, purpose: str) -> None:
    """Raise MissingExtraError unless `module` can be imported (checked without importing)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        found = False
    if not found:
        raise MissingExtraError(
            f"{purpose} needs {module}, which is not installed",
            f"install the extra: pip install 'ovchat[{extra}]'",
        )
