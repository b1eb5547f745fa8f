"""The Python API of a reranker: `ovchat.load("my-reranker")` gives a RerankModel.

    model = ovchat.load("reranker")
    for r in model.rerank("What does import do?", ["Imports load modules.", "Cats purr."]):
        print(r.index, r.score)        # best first; r.index is the document's place in the list

It is a `Model`, so code that takes models takes it; generating with it raises
InvalidModelError saying that it reranks and does not generate.
"""

from __future__ import annotations

from collections.abc import Sequence

from .engine.reranker import Ranked, Ranking, Reranker
from .taskmodel import TaskModel

__all__ = ["Ranked", "Ranking", "RerankModel", "Reranker"]


class RerankModel(TaskModel):
    """A cross-encoder loaded on a device: `rerank()` documents by relevance to a query."""

    runner: Reranker

    def rerank(
        self, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> list[Ranked]:
        """The documents' relevance to `query`, best first (`top_n`: only the best n).

        Each result has `index` (the document's place in `documents`) and `score` (the
        model's relevance, 0 to 1 for one-logit cross-encoders). An empty list, an empty
        text or a pair longer than the model's window raises an OvchatError naming it.
        """
        return self.runner.rerank(query, documents, top_n).results

    def ranking(self, query: str, documents: Sequence[str], top_n: int | None = None) -> Ranking:
        """`rerank` with the tokens the pairs took (for usage accounting)."""
        return self.runner.rerank(query, documents, top_n)
