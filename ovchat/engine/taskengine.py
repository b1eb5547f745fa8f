"""What the embedding, rerank and speech engines share: an export of one kind, checked and
loaded on a device with its pipeline's properties, timed, and called one call at a time.
Nothing here knows about terminals or HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..modeldir import Kind, check_model_dir, read_model_info, require_kind
from .device import DEFAULT_DEVICE, check_device, load_error
from .runtime import pipeline_properties


class TaskEngine:
    """One task model loaded once; its calls may come from any thread (`_lock` serialises
    them: a genai pipeline runs one call at a time)."""

    KIND: ClassVar[Kind]  # the manifest's kind this engine loads
    WHAT: ClassVar[str]  # "an embedding model": how an error names it
    HINT: ClassVar[str]  # what to load instead, when the kind is wrong
    DEFAULT_PROPERTIES: ClassVar[dict[str, str]] = {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": "1",
    }

    def __init__(
        self,
        model_dir: str | Path,
        device: str = DEFAULT_DEVICE,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = check_model_dir(model_dir)
        self.info = read_model_info(self.path)
        require_kind(self.info, self.KIND, self.WHAT, self.HINT)
        self.device = check_device(device)
        self.properties = pipeline_properties(self.DEFAULT_PROPERTIES, properties)
        self._configure()
        t0 = time.perf_counter()
        try:
            self._load()
        except RuntimeError as e:
            raise load_error(self.path, e) from e
        self.load_seconds = time.perf_counter() - t0
        self._lock = threading.Lock()

    def _configure(self) -> None:
        """Read what loading needs from the manifest (before `_load`)."""

    def _load(self) -> None:
        """Build the pipeline (and tokenizer) on `self.device`; a RuntimeError from genai
        becomes a load error naming the model."""
        raise NotImplementedError
