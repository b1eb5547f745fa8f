"""The Python API of an embedding model: `ovchat.load("my-embedder")` gives an EmbeddingModel.

    model = ovchat.load("minilm")
    v = model.embed("What does the class statement do?")    # one vector (a list of floats)
    vs = model.embed(["first text", "second text"])         # one vector per text

It is a `LoadedModel` as a chat `Model` is (name, path, context_length, close, `with`); it
has no generating engine, and its generating methods (`generate`, `stream`, `complete`,
`chat`) raise InvalidModelError saying that it embeds and does not generate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .engine.embedder import Embedder, Embeddings
from .errors import InvalidModelError
from .modelbase import NonGenerating

__all__ = ["Embedder", "EmbeddingModel", "Embeddings"]


class EmbeddingModel(NonGenerating):
    """An embedding export loaded on a device: `embed()` texts into vectors."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def _refuse(self) -> NoReturn:
        raise InvalidModelError(
            f"{self.name} is an embedding model: it embeds text, it does not generate it",
            "use model.embed(texts), or load a chat model",
            param="model",
        )

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

    def embed(
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
