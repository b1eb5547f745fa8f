"""POST /v1/rerank: documents ordered by relevance to a query, in the shape Jina's, Cohere's
and llama.cpp's rerank clients use (also answered at /rerank and /v2/rerank).

Request: `query`, `documents` (strings, or objects with a `text`, as Cohere and Jina take
them), `top_n`, `return_documents`. Response: `results`, best first, each with `index` (the
document's place in the request), `relevance_score`, and with `return_documents` the
`document` as {"text": ...}; `usage` counts the tokens of every (query, document) pair.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from ..engine.reranker import MAX_DOCUMENTS, Reranker
from .errors import APIError
from .requestmodel import RequestModel
from .state import ServerState
from .taskcall import in_slot

# Other clients' paths for the same endpoint, rewritten before the API-key check.
ALIASES = {"/rerank": "/v1/rerank", "/v2/rerank": "/v1/rerank", "/v1/reranking": "/v1/rerank"}


class RerankDocument(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    text: str


class RerankRequest(RequestModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    query: str
    documents: list[str | RerankDocument] = Field(max_length=MAX_DOCUMENTS)
    model: str | None = None
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False

    def texts(self) -> list[str]:
        if not self.query:
            raise APIError(400, "'query' must not be empty", param="query", code="invalid_value")
        if not self.documents:
            raise APIError(
                400, "'documents' must not be empty", param="documents", code="invalid_value"
            )
        return [d if isinstance(d, str) else d.text for d in self.documents]


class RerankAliases:
    """ASGI middleware: other clients' rerank paths as /v1/rerank, so that the same guard
    (API key, body limit, metrics) applies to them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in ALIASES:
            scope = {**scope, "path": ALIASES[scope["path"]], "raw_path": None}
        await self.app(scope, receive, send)


def add_rerank_routes(app: FastAPI, server: ServerState) -> None:
    app.add_middleware(RerankAliases)

    @app.post("/v1/rerank")
    async def rerank(body: RerankRequest, request: Request) -> dict[str, Any]:
        docs = body.texts()
        name, reranker = await server.runner(body.model, "rerank", request)
        assert isinstance(reranker, Reranker)
        ranking = await in_slot(server, request, reranker.rerank, body.query, docs, body.top_n)
        server.metrics.reranked_documents.inc(len(docs))
        results: list[dict[str, Any]] = []
        for r in ranking.results:
            item: dict[str, Any] = {"index": r.index, "relevance_score": r.score}
            if body.return_documents:
                item["document"] = {"text": docs[r.index]}
            results.append(item)
        n = ranking.tokens
        return {
            "id": f"rerank-{uuid.uuid4().hex}",
            "object": "list",
            "model": name,
            "results": results,
            "usage": {"prompt_tokens": n, "total_tokens": n},
        }
