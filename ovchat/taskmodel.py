"""The Python API of the models that do not generate chat answers (rerankers, speech
models): a `Model` whose generating methods raise InvalidModelError naming what it does."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import Engine
from .errors import InvalidModelError
from .model import Model
from .modeldir import KIND_ARTICLE, KIND_USE, ModelInfo

if TYPE_CHECKING:
    from .conversation import Conversation


class TaskModel(Model):
    """A loaded model of another kind than chat; `runner` is its engine (a Reranker, a
    Transcriber), with `info`, `path`, `device` and `close()`."""

    def __init__(self, runner: Any) -> None:  # no chat engine: see `engine`
        self.runner = runner

    @property
    def info(self) -> ModelInfo:
        info: ModelInfo = self.runner.info
        return info

    @property
    def engine(self) -> Engine:
        """These models have no generating engine: every generating method ends here."""
        kind = self.info.kind
        raise InvalidModelError(
            f"{self.name} is {KIND_ARTICLE[kind]} {kind} model: it does not generate text",
            f"use it with {KIND_USE[kind]}; or load a chat model",
            param="model",
        )

    @engine.setter
    def engine(self, value: Engine) -> None:
        raise AttributeError(f"{type(self).__name__} has no chat engine")

    def chat(self, system: str | None = None, **options: Any) -> Conversation:
        self.engine  # noqa: B018 - raises: a conversation needs a generating model
        return super().chat(system, **options)

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
