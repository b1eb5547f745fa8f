"""What the field's libraries print during an export: nncf's bit-width table kept for the
manifest, tracing warnings and weight-loading bars dropped."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def capture_nncf_log() -> Iterator[list[str]]:
    """Keep nncf's own summary lines (the bit-width table) for the manifest."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.extend(record.getMessage().splitlines())

    logger = logging.getLogger("nncf")
    handler = Keep(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


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
