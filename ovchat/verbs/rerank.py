"""`ovchat rerank -m MODEL QUERY DOC...`: documents ordered by their relevance to a query,
from a reranker (a cross-encoder; documents one per line of stdin when no DOC is given):
score and text, best first, or `--json`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine import DEFAULT_DEVICE
from ..engine.reranker import Ranking, Reranker
from ..errors import OptionError
from ..library import lookup
from .cliargs import add_model_arguments, properties_from_args

FLAGS = {"query": "QUERY", "documents": "DOC", "top_n": "--top-n"}


def rerank(
    query: str,
    documents: Sequence[str],
    model: str | Path,
    device: str = DEFAULT_DEVICE,
    properties: Mapping[str, Any] | None = None,
    top_n: int | None = None,
) -> tuple[Reranker, Ranking]:
    """Load `model` (a library name or an export's path) and rerank `documents` once."""
    reranker = Reranker(lookup(model).path, device=device, properties=properties)
    return reranker, reranker.rerank(query, documents, top_n)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", metavar="QUERY", help="what the documents are ranked against")
    p.add_argument("documents", nargs="*", metavar="DOC", help="documents (default: stdin lines)")
    add_model_arguments(p)
    p.add_argument("--top-n", type=int, help="show only the best N")
    p.add_argument("--json", action="store_true", help="print the ranking as one JSON object")


def main(args: argparse.Namespace) -> int:
    if not args.model:
        raise OptionError(
            "name a reranker",
            "e.g. ovchat rerank -m NAME QUERY DOC...; pull one with ovchat pull SOURCE "
            "--task text-classification",
        )
    docs = list(args.documents)
    if not docs:
        if sys.stdin.isatty():
            raise OptionError(
                "no documents given", 'pass some: ovchat rerank -m NAME QUERY "a doc"'
            )
        docs = [ln for ln in sys.stdin.read().splitlines() if ln.strip()]
    reranker, ranking = rerank(
        args.query, docs, args.model, args.device, properties_from_args(args), args.top_n
    )
    if args.json:
        results = [
            {"index": r.index, "relevance_score": r.score, "document": docs[r.index]}
            for r in ranking.results
        ]
        out = {
            "model": reranker.info.name,
            "results": results,
            "usage": {"total_tokens": ranking.tokens},
        }
        print(json.dumps(out))
        return 0
    for r in ranking.results:
        d = docs[r.index]
        print(f"{r.score:.4f}  [{r.index}] {d if len(d) <= 70 else d[:69] + '…'}")
    return 0
