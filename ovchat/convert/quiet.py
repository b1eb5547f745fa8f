"""What the field's libraries print during an export: nncf's bit-width table kept for the
manifest, tracing warnings and weight-loading bars dropped."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def capture_nncf_log() -> Iterator[list[str]]:
    """Keep nncf's own summary lines (the bit-width table) for the manifest; its output goes
    to stderr with the rest of the progress."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.extend(record.getMessage().splitlines())

    logger = logging.getLogger("nncf")
    with contextlib.suppress(ImportError):
        import nncf  # noqa: F401 - its logger gets its stdout handler on import: now
    # nncf prints to stdout; stdout is for results (the export's path), so: stderr. (Set
    # directly: setStream() would flush the old stream, which may be closed by now.)
    moved = [(h, h.stream) for h in logger.handlers if type(h) is logging.StreamHandler]
    for h, _ in moved:
        h.stream = sys.stderr
    handler = Keep(logging.INFO)
    logger.addHandler(handler)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # and its progress bars (rich)
            yield lines
    finally:
        logger.removeHandler(handler)
        for h, stream in moved:
            h.stream = stream


def quiet_libraries() -> None:
    """Keep nncf's progress bars, drop tracing warnings and weight-loading bars: they are
    noise to a user who asked for an export."""
    import warnings

    import transformers

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from torch.jit import TracerWarning

        warnings.filterwarnings("ignore", category=TracerWarning)
    except ImportError:  # pragma: no cover
        pass
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("optimum").setLevel(logging.ERROR)
