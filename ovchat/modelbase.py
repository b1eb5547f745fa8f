"""What every loaded model has, whatever its kind: a name, a path, a context window, `close`
and `with`, and a clear refusal for what its kind does not do. `Model` (model.py) generates;
`EmbeddingModel` (embedmodel.py) embeds; `RerankModel` reranks and `SpeechModel` transcribes
(taskmodel.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn, Self

from .errors import InvalidModelError
from .modeldir import KIND_ARTICLE, KIND_TASK, model_kind


class LoadedModel:
    """The common base of every model `ovchat.load()` gives."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def path(self) -> Path:
        raise NotImplementedError

    @property
    def context_length(self) -> int:
        raise NotImplementedError

    def embed(self, *args: Any, **kwargs: Any) -> Any:
        """Only embedding models embed (see `EmbeddingModel.embed`)."""
        raise self._not("embedding", "embed text")

    def rerank(self, *args: Any, **kwargs: Any) -> Any:
        """Only rerankers rerank (see `RerankModel.rerank`)."""
        raise self._not("rerank", "rerank documents")

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        """Only speech models transcribe (see `SpeechModel.transcribe`)."""
        raise self._not("speech", "transcribe audio")

    def _not(self, kind: str, what: str) -> InvalidModelError:
        own = model_kind(self.path)
        return InvalidModelError(
            f"{self.name} is {KIND_ARTICLE[own]} {own} model: it does not {what}",
            f"load {KIND_ARTICLE[kind]} {kind} model: one exported with the task {KIND_TASK[kind]}",
            param="model",
        )

    def close(self) -> None:
        """Free what the model holds (background threads, device memory)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NonGenerating(LoadedModel):
    """A model that does not generate text (embedding, rerank, speech): its generating
    methods raise the InvalidModelError its `_refuse()` words."""

    def _refuse(self) -> NoReturn:
        raise NotImplementedError

    def generate(self, *args: Any, **kwargs: Any) -> NoReturn:
        """This model does not generate: raises InvalidModelError."""
        self._refuse()

    def stream(self, *args: Any, **kwargs: Any) -> NoReturn:
        """This model does not generate: raises InvalidModelError."""
        self._refuse()

    def complete(self, *args: Any, **kwargs: Any) -> NoReturn:
        """This model does not generate: raises InvalidModelError."""
        self._refuse()

    def chat(self, *args: Any, **kwargs: Any) -> NoReturn:
        """This model does not hold conversations: raises InvalidModelError."""
        self._refuse()
