"""`ovchat embed -m MODEL TEXT...`: vectors for texts from an embedding model (one per line of
stdin when no TEXT is given): a short summary per text, or `--json` for the vectors."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine import DEFAULT_DEVICE
from ..engine.embedder import Embedder, Embeddings
from ..errors import OptionError
from ..library import lookup
from .cliargs import add_model_arguments, properties_from_args

FLAGS = {"input": "TEXT", "dimensions": "--dimensions"}
PREVIEW = 4  # values shown per vector in the summary


def embed(
    texts: Sequence[str],
    model: str | Path,
    device: str = DEFAULT_DEVICE,
    properties: Mapping[str, Any] | None = None,
    query: bool = False,
    dimensions: int | None = None,
) -> tuple[Embedder, Embeddings]:
    """Load `model` (a library name or an export's path) and embed `texts` once."""
    embedder = Embedder(lookup(model).path, device=device, properties=properties)
    return embedder, embedder.embed(texts, query=query, dimensions=dimensions)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts (default: lines of stdin)")
    add_model_arguments(p)
    p.add_argument("--query", action="store_true", help="texts are queries (query instruction)")
    p.add_argument("--dimensions", type=int, help="shorter vectors (Matryoshka models only)")
    p.add_argument("--json", action="store_true", help="print the vectors as one JSON object")


def main(args: argparse.Namespace) -> int:
    if not args.model:
        raise OptionError(
            "name an embedding model",
            "e.g. ovchat embed -m NAME TEXT; pull one with ovchat pull SOURCE "
            "--task feature-extraction",
        )
    texts = list(args.texts)
    if not texts:
        if sys.stdin.isatty():
            raise OptionError("no text given", 'pass some: ovchat embed -m NAME "a text"')
        texts = [ln for ln in sys.stdin.read().splitlines() if ln.strip()]
    embedder, result = embed(
        texts, args.model, args.device, properties_from_args(args), args.query, args.dimensions
    )
    if args.json:
        data = [
            {"index": i, "text": t, "tokens": n, "embedding": v}
            for i, (t, n, v) in enumerate(zip(texts, result.tokens, result.vectors, strict=True))
        ]
        n = result.total_tokens
        out = {
            "model": embedder.info.name,
            "dimensions": len(result.vectors[0]),
            "data": data,
            "usage": {"prompt_tokens": n, "total_tokens": n},
        }
        print(json.dumps(out))
        return 0
    for t, n, v in zip(texts, result.tokens, result.vectors, strict=True):
        norm = math.sqrt(sum(x * x for x in v))
        head = " ".join(f"{x:+.4f}" for x in v[:PREVIEW])
        label = t if len(t) <= 40 else t[:39] + "…"
        print(f"{label!r}: {len(v)} dims, norm {norm:.3f}, {n} tokens: [{head} …]")
    return 0
