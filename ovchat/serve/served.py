"""One model of the server's pool and where it stands (pool.py keeps the list): its state,
its engine once loaded, its users, and what it says of itself (/v1/models, `ovchat ps`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import DeviceError, InvalidModelError, OptionError, StorageError
from ..modeldir import Kind, ModelInfo
from .modelspecs import ModelSpec

State = Literal["unloaded", "loading", "loaded", "failed"]
KIND_DOES = {"chat": "generates text", "embedding": "embeds text",
             "rerank": "ranks documents", "speech": "transcribes audio",
             "vision": "generates text about images"}  # fmt: skip
KIND_ROUTES = {
    "chat": "the chat or completion endpoints",
    "embedding": "/v1/embeddings",
    "rerank": "/v1/rerank",
    "speech": "/v1/audio/transcriptions and /v1/audio/translations",
    "vision": "the chat or completion endpoints",
}
# What a failed load says to clients: the kind of problem, never the server's paths.
LOAD_FAILURES: dict[type[Exception], str] = {
    InvalidModelError: "its files are not a loadable OpenVINO export",
    DeviceError: "its device is not available on this server",
    OptionError: "OpenVINO refused the server's settings for it",
    StorageError: "the server could not read or write its files",
}


@dataclass(eq=False)
class Served:
    """One model of the pool and where it stands."""

    spec: ModelSpec
    info: ModelInfo
    state: State = "unloaded"
    engine: Any = None  # an Engine (chat), Embedder, Reranker or Transcriber, once loaded
    pinned: bool = False  # handed to create_app: never unloaded or closed here
    users: int = 0  # requests holding it now
    last_used: float = 0.0  # time.time()
    load_seconds: float | None = None
    error: str | None = None  # why the last load failed (for clients)
    failed_at: float = 0.0
    task: asyncio.Task[None] | None = None  # the load in progress
    keep_alive: float | None = None  # a request's own (Ollama's keep_alive); None: the server's
    restarting: bool = False  # its engine process died: a new one is loading

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def kind(self) -> Kind:
        return self.info.kind

    def card(self) -> dict[str, Any]:
        """GET /v1/models: OpenAI's fields, then ovchat's."""
        try:
            created = int(self.spec.path.stat().st_mtime)
        except OSError:
            created = 0
        return {
            "id": self.id,
            "object": "model",
            "created": created,
            "owned_by": "ovchat",
            "kind": self.kind,
            "state": self.state,
            "context_length": self.info.context_length,
        }

    def record(self) -> dict[str, Any]:
        """What `ovchat ps` shows (and GET /v1/models adds to OpenAI's fields)."""
        return {
            "id": self.id,
            "dir": str(self.spec.path),
            "kind": self.kind,
            "state": self.state,
            "load_seconds": None if self.load_seconds is None else round(self.load_seconds, 3),
            "last_used": self.last_used or None,
            "in_use": self.users,
        }
