"""The rerank engine: a cross-encoder export loaded on a device; a query and documents →
each document's relevance to the query, best first.

openvino-genai's TextRerankPipeline does the work (pair tokenization, the model, a sigmoid
over one logit or a softmax over two). ovchat adds what it does not: the checks a server
needs (no empty document list, no empty text, a pair longer than the window is an error,
not silently cut), token counts for usage, and one call at a time. Nothing here knows
about terminals or HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ContextLengthError, InvalidModelError, OptionError
from ..modeldir import read_json_object
from .taskengine import TaskEngine

BATCH = 32  # pairs per pipeline call: padding to the longest pair costs less in small batches
MAX_DOCUMENTS = 1000  # per call: a bound on one request's work (the server says it too)


@dataclass(frozen=True)
class Ranked:
    """One document's place: its index in the list given, and its relevance score."""

    index: int
    score: float


@dataclass(frozen=True)
class Ranking:
    """Documents best first (at most `top_n` of them), and the tokens all pairs took."""

    results: list[Ranked]
    tokens: int


class Reranker(TaskEngine):
    """A cross-encoder loaded once; `rerank()` may be called from any thread."""

    KIND = "rerank"
    WHAT = "a reranker"
    HINT = "load a cross-encoder exported with the task text-classification"

    def _configure(self) -> None:
        self.context_length = self.info.context_length

    def _load(self) -> None:
        import openvino_genai as ov_genai

        cls = ov_genai.TextRerankPipeline
        cfg = cls.Config()
        cfg.top_n = BATCH  # every pair of a batch is scored; ovchat sorts and cuts
        cfg.max_length = self.context_length
        self._pipe = cls(str(self.path), self.device, cfg, **self.properties)
        # Built as the pipeline builds its own: with a second input for the document
        # (not for Qwen3, whose query and document go in joined, as genai does).
        paired = self._config().get("model_type") != "qwen3"
        self.tokenizer = ov_genai.Tokenizer(str(self.path), {"add_second_input": paired})

    def _config(self) -> dict[str, Any]:
        try:
            return read_json_object(self.path / "config.json")
        except InvalidModelError:
            return {}

    def count_tokens(self, query: str, documents: Sequence[str]) -> list[int]:
        """Tokens each (query, document) pair takes, special tokens included."""
        if self.tokenizer.supports_paired_input():
            enc = self.tokenizer.encode([query] * len(documents), list(documents))
        else:  # as the pipeline does: the query and the document joined
            enc = self.tokenizer.encode([query + d for d in documents])
        return [int(n) for n in enc.attention_mask.data.sum(axis=1)]

    def rerank(self, query: str, documents: Sequence[str], top_n: int | None = None) -> Ranking:
        """The documents' relevance to `query`, best first; `top_n` keeps the best n."""
        documents = list(documents)
        self._check(query, documents, top_n)
        tokens: list[int] = []
        scored: list[Ranked] = []
        for start in range(0, len(documents), BATCH):
            part = documents[start : start + BATCH]
            tokens += self.count_tokens(query, part)
            longest = max(range(len(tokens)), key=lambda i: tokens[i])
            if tokens[longest] > self.context_length:
                raise ContextLengthError(
                    f"document {longest} and the query are {tokens[longest]} tokens, more "
                    f"than this model's {self.context_length}",
                    "shorten the document or the query, or split the document in parts",
                    param="documents",
                )
            with self._lock:
                pairs = self._pipe.rerank(query, part)
            scored += [Ranked(start + int(i), float(s)) for i, s in pairs]
        scored.sort(key=lambda r: (-r.score, r.index))
        return Ranking(scored[:top_n] if top_n is not None else scored, sum(tokens))

    @staticmethod
    def _check(query: str, documents: list[str], top_n: int | None) -> None:
        if not isinstance(query, str) or not query:
            raise OptionError("the query is empty", "give a non-empty query", param="query")
        if not documents:
            raise OptionError(
                "there are no documents to rerank", "give at least one", param="documents"
            )
        if len(documents) > MAX_DOCUMENTS:
            raise OptionError(
                f"at most {MAX_DOCUMENTS} documents per call, got {len(documents)}",
                "rerank them in parts",
                param="documents",
            )
        for i, d in enumerate(documents):
            if not isinstance(d, str) or not d:
                raise OptionError(
                    f"document {i} is empty", "give non-empty strings", param="documents"
                )
        if top_n is not None and top_n < 1:
            raise OptionError(f"top_n must be at least 1, got {top_n}", param="top_n")

    def close(self) -> None:
        """Nothing runs in the background; kept so that a pool can close any engine."""
