"""The Python API of the models that do not generate chat answers (rerankers, speech
models): a `LoadedModel` whose generating methods raise InvalidModelError naming what it
does."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from .errors import InvalidModelError
from .modelbase import NonGenerating
from .modeldir import KIND_ARTICLE, KIND_USE, ModelInfo


class TaskModel(NonGenerating):
    """A loaded model of another kind than chat; `runner` is its engine (a Reranker, a
    Transcriber), with `info`, `path`, `device` and `close()`."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    @property
    def info(self) -> ModelInfo:
        info: ModelInfo = self.runner.info
        return info

    def _refuse(self) -> NoReturn:
        kind = self.info.kind
        raise InvalidModelError(
            f"{self.name} is {KIND_ARTICLE[kind]} {kind} model: it does not generate text",
            f"use it with {KIND_USE[kind]}; or load a chat model",
            param="model",
        )

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def path(self) -> Path:
        path: Path = self.runner.path
        return path

    @property
    def context_length(self) -> int:
        return self.info.context_length

    def close(self) -> None:
        self.runner.close()

    def __repr__(self) -> str:
        return f"<ovchat.{type(self).__name__} {self.name!r} on {self.runner.device}>"
