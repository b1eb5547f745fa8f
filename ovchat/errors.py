"""The few exceptions ovchat raises: each carries what is wrong and how to fix it."""

from __future__ import annotations


class OvchatError(Exception):
    """Base class. `str(err)` is one line: the problem, then the fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ModelNotFoundError(OvchatError):
    """The named model does not exist (no such path, unknown hub id)."""


class InvalidModelError(OvchatError):
    """A path exists but is not a usable ovchat/OpenVINO model (missing or corrupted files)."""


class UnsupportedModelError(OvchatError):
    """The architecture or file type cannot be exported."""


class ExportError(OvchatError):
    """Conversion or compression failed."""


class DeviceError(OvchatError):
    """The requested OpenVINO device is not present."""


class OptionError(OvchatError):
    """An option value is out of range or malformed."""


class ContextLengthError(OvchatError):
    """The prompt does not fit in the model's context window."""


OV_NOISE = ("Exception from", "Check '", 'Check "', "[ GENERAL_ERROR ]", "Traceback")
MAX_REASON = 300  # characters of a library's message kept in ours


def reason(e: BaseException) -> str:
    """The informative line of a library's exception (OpenVINO puts source paths first)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(OV_NOISE) and not ln.endswith(".cpp")]
    text = (useful or lines or [type(e).__name__])[-1]
    return text[:MAX_REASON]
