"""The Python API of an embedding model: `ovchat.load("my-embedder")` gives an EmbeddingModel.

    model = ovchat.load("minilm")
    v = model.embed("What does the class statement do?")    # one vector (a list of floats)
    vs = model.embed(["first text", "second text"])         # one vector per text

It is a `Model`, so code that takes models takes it; generating with it (`generate`,
`stream`, `chat`) raises InvalidModelError saying that it embeds and does not generate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import Engine
from .engine.embedder import Embedder, Embeddings
from .errors import InvalidModelError
from .model import Model

if TYPE_CHECKING:
    from .conversation import Conversation

__all__ = ["Embedder", "EmbeddingModel", "Embeddings"]


class EmbeddingModel(Model):
    """An embedding export loaded on a device: `embed()` texts into vectors."""

    def __init__(self, embedder: Embedder) -> None:  # no chat engine: see `engine`
        self.embedder = embedder

    @property
    def engine(self) -> Engine:
        """Embedding models have no generating engine: every generating method ends here."""
        raise InvalidModelError(
            f"{self.name} is an embedding model: it embeds text, it does not generate it",
            "use model.embed(texts), or load a chat model",
            param="model",
        )

    @engine.setter
    def engine(self, value: Engine) -> None:
        raise AttributeError("an EmbeddingModel has no chat engine")

    def chat(self, system: str | None = None, **options: Any) -> Conversation:
        self.engine  # noqa: B018 - raises: a conversation needs a generating model
        return super().chat(system, **options)

    @property
    def name(self) -> str:
        return self.embedder.info.name

    @property
    def path(self) -> Path:
        return self.embedder.path

    @property
    def context_length(self) -> int:
        """The longest text it takes, in tokens."""
        return self.embedder.context_length

    @property
    def dimensions(self) -> int:
        """The length of its vectors."""
        return self.embedder.dimensions

    def embed(  # type: ignore[override]
        self, texts: str | Sequence[str], *, query: bool = False, dimensions: int | None = None
    ) -> Any:
        """One vector (list of floats) for a str, a list of vectors for a list of str.

        `query=True` puts the model's query instruction first (for models trained with one);
        `dimensions` cuts the vectors shorter where the model was trained for it (Matryoshka).
        A text longer than the model's window raises ContextLengthError.
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        result = self.embedder.embed(items, query=query, dimensions=dimensions)
        return result.vectors[0] if isinstance(texts, str) else result.vectors

    def embeddings(
        self, texts: Sequence[str], *, query: bool = False, dimensions: int | None = None
    ) -> Embeddings:
        """`embed` with the token count of each text (for usage accounting)."""
        return self.embedder.embed(list(texts), query=query, dimensions=dimensions)

    def close(self) -> None:
        self.embedder.close()

    def __repr__(self) -> str:
        return (
            f"<ovchat.EmbeddingModel {self.name!r} on {self.embedder.device}, "
            f"{self.dimensions} dimensions, context {self.context_length}>"
        )
