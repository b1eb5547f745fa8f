"""The embedding engine: an embedding export loaded on a device; texts → vectors.

openvino-genai's TextEmbeddingPipeline does the work (tokenizer, model, pooling,
normalisation), configured from the export's manifest. ovchat adds what it does not: token
counts (usage), the context check (an input longer than the model's window is an error, not
silently cut), shorter vectors where the model allows them, and one call at a time.
Nothing here knows about terminals or HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ContextLengthError, OptionError
from .device import DEFAULT_DEVICE
from .taskengine import TaskEngine

BATCH = 32  # texts per pipeline call, sorted by length: each batch pads to its longest
POOLING_TYPES = {"cls": "CLS", "mean": "MEAN", "last_token": "LAST_TOKEN"}
# An export made by another tool has no settings: genai's own defaults, said in `settings`.
FALLBACK_SETTINGS = {"pooling": "cls", "normalize": True, "guessed": ["pooling", "normalize"]}


@dataclass(frozen=True)
class Embeddings:
    """Vectors for a list of texts, in order, and the tokens each text took."""

    vectors: list[list[float]]
    tokens: list[int]

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)


class Embedder(TaskEngine):
    """An embedding model loaded once; `embed()` may be called from any thread."""

    KIND = "embedding"
    WHAT = "an embedding model"
    HINT = "load an embedding model: one exported with the task feature-extraction"

    def __init__(
        self,
        model_dir: str | Path,
        device: str = DEFAULT_DEVICE,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(model_dir, device, properties)
        self.dimensions = len(self._embed(["dimensions"], query=False)[0])

    def _configure(self) -> None:
        self.settings: dict[str, Any] = dict(
            self.info.manifest.get("embedding") or FALLBACK_SETTINGS
        )
        self.context_length = min(
            self.info.context_length,
            int(self.settings.get("max_length") or self.info.context_length),
        )

    @property
    def matryoshka(self) -> bool:
        """Trained so that its vectors may be cut shorter (`dimensions`)."""
        return bool(self.settings.get("matryoshka"))

    def _load(self) -> None:
        import openvino_genai as ov_genai

        cls = ov_genai.TextEmbeddingPipeline
        cfg = cls.Config()
        cfg.pooling_type = getattr(cls.PoolingType, POOLING_TYPES[self.settings["pooling"]])
        cfg.normalize = bool(self.settings.get("normalize", True))
        cfg.max_length = self.context_length
        if self.settings.get("padding_side"):
            cfg.padding_side = self.settings["padding_side"]
        if self.settings.get("query_instruction"):
            cfg.query_instruction = self.settings["query_instruction"]
        if self.settings.get("embed_instruction"):
            cfg.embed_instruction = self.settings["embed_instruction"]
        self._pipe = cls(str(self.path), self.device, cfg, **self.properties)
        self.tokenizer = ov_genai.Tokenizer(str(self.path))

    def count_tokens(self, texts: Sequence[str], query: bool = False) -> list[int]:
        """Tokens each text takes, its instruction included."""
        prefix = self.settings.get("query_instruction" if query else "embed_instruction") or ""
        enc = self.tokenizer.encode([prefix + t for t in texts])
        return [int(n) for n in enc.attention_mask.data.sum(axis=1)]

    def embed(
        self, texts: Sequence[str], *, query: bool = False, dimensions: int | None = None
    ) -> Embeddings:
        """Vectors for `texts` (each a non-empty string), optionally cut to `dimensions`.

        `query` puts the model's query instruction before each text instead of its document
        instruction (models like E5 or Qwen3-Embedding are trained with them).
        """
        texts = list(texts)
        if not texts:
            raise OptionError("there is nothing to embed", "give at least one text", param="input")
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t:
                raise OptionError(f"text {i} is empty", "give non-empty strings", param="input")
        self._check_dimensions(dimensions)
        tokens = []
        for start in range(0, len(texts), BATCH):
            tokens += self.count_tokens(texts[start : start + BATCH], query)
        longest = max(range(len(texts)), key=lambda i: tokens[i])
        if tokens[longest] > self.context_length:
            raise ContextLengthError(
                f"text {longest} is {tokens[longest]} tokens, more than this model's "
                f"{self.context_length}",
                "shorten it, or split it in parts",
                param="input",
            )
        # Batches of texts of similar length: each batch is padded to its longest text, so
        # sorted batches pad less (27-40% less time on 256 short texts, benchmarks/embed_bench.py).
        order = sorted(range(len(texts)), key=lambda i: -tokens[i])
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), BATCH):
            part = order[start : start + BATCH]
            for i, v in zip(part, self._embed([texts[i] for i in part], query), strict=True):
                vectors[i] = v
        if dimensions is not None and dimensions < self.dimensions:
            vectors = [self._cut(v, dimensions) for v in vectors]
        return Embeddings(vectors, tokens)

    def _embed(self, texts: list[str], query: bool) -> list[list[float]]:
        with self._lock:
            if query:
                return [list(map(float, self._pipe.embed_query(t))) for t in texts]
            return [list(map(float, v)) for v in self._pipe.embed_documents(texts)]

    def _check_dimensions(self, dimensions: int | None) -> None:
        if dimensions is None or dimensions == self.dimensions:
            return
        if dimensions < 1 or dimensions > self.dimensions:
            raise OptionError(
                f"dimensions must be between 1 and {self.dimensions}, got {dimensions}",
                param="dimensions",
            )
        if not self.matryoshka:
            raise OptionError(
                f"{self.info.name} makes {self.dimensions}-dimension vectors and was not "
                "trained to have them cut shorter (Matryoshka)",
                f"ask for {self.dimensions} dimensions or leave them out",
                param="dimensions",
            )

    def _cut(self, v: list[float], n: int) -> list[float]:
        """A Matryoshka model's vector, kept to its first `n` values (renormalised)."""
        head = v[:n]
        if not self.settings.get("normalize", True):
            return head
        norm = math.sqrt(sum(x * x for x in head)) or 1.0
        return [x / norm for x in head]

    def close(self) -> None:
        """Nothing runs in the background; kept so that a pool can close any engine."""
