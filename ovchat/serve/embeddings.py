"""POST /v1/embeddings: OpenAI's embeddings endpoint over the pool's embedding models.

`input` is a string or a list of strings (OpenAI also takes token ids; a text pipeline
cannot); `encoding_format` float or base64 (little-endian float32, as OpenAI sends it, and
what the official client asks for by default); `dimensions` only where the model was
trained for it (else a 400 saying why); usage counts the tokens embedded.
"""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

from fastapi import FastAPI, Request
from pydantic import ConfigDict, Field

from .errors import APIError
from .requestmodel import RequestModel
from .state import ServerState
from .taskcall import in_slot

MAX_INPUTS = 2048  # as OpenAI


class EmbeddingRequest(RequestModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def texts(self) -> list[str]:
        items = [self.input] if isinstance(self.input, str) else list(self.input)
        if not items:
            raise APIError(400, "'input' must not be empty", param="input", code="invalid_value")
        if len(items) > MAX_INPUTS:
            raise APIError(
                400, f"at most {MAX_INPUTS} inputs per request", param="input", code="invalid_value"
            )
        if not all(isinstance(t, str) for t in items):
            raise APIError(
                400,
                "token ids are not supported as input; send the text",
                param="input",
                code="invalid_value",
            )
        return [str(t) for t in items]


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def add_embedding_routes(app: FastAPI, server: ServerState) -> None:
    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
        texts = body.texts()
        name, embedder = await server.embedder(body.model, request)
        result = await in_slot(server, request, embedder.embed, texts, dimensions=body.dimensions)
        server.metrics.embedded_tokens.inc(result.total_tokens)
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(result.vectors)
        ]
        n = result.total_tokens
        return {
            "object": "list",
            "data": data,
            "model": name,
            "usage": {"prompt_tokens": n, "total_tokens": n},
        }
