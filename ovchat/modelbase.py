"""What every loaded model has, chat or embedding: a name, a path, a context window, `close`
and `with`. `Model` (model.py) generates; `EmbeddingModel` (embedmodel.py) embeds."""

from __future__ import annotations

from pathlib import Path
from typing import Self


class LoadedModel:
    """The common base of `Model` and `EmbeddingModel` (what `ovchat.load()` gives)."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def path(self) -> Path:
        raise NotImplementedError

    @property
    def context_length(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Free what the model holds (background threads, device memory)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
