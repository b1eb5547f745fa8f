"""What one server holds: its settings, its models (the pool), admission and metrics.

Made by `create_app`, one per app: two apps in one process share nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from ..engine import Engine, Plan
from ..engine.embedder import Embedder
from ..modeldir import Kind
from .admission import shutting_down
from .fairness import FairSlots
from .metrics import Metrics
from .pool import ModelPool
from .settings import ServerSettings

GRAMMAR_THREADS = 4


@dataclass
class ServerState:
    settings: ServerSettings
    metrics: Metrics = field(default_factory=Metrics)
    engine: Engine | None = None  # one model loaded by the caller (create_app's `engine`)
    slots: FairSlots = field(init=False)
    pool: ModelPool = field(init=False)
    stopping: bool = False  # shutting down: in-flight answers were ended, nobody is admitted
    # Requests whose grammar may have to compile are planned here, off the event loop: each
    # waits on its model's grammar sandbox (one compile at a time per model), so that a few
    # threads let other models' requests and remembered grammars through meanwhile.
    compiler: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            GRAMMAR_THREADS, thread_name_prefix="ovchat-grammar"
        )
    )

    def __post_init__(self) -> None:
        s = self.settings
        self.slots = FairSlots(s.max_running, s.max_waiting, self.metrics, lambda: self.stopping)
        self.pool = ModelPool(s, self.metrics, self.engine)

    async def chat_engine(self, name: str | None, request: Request) -> tuple[str, Engine]:
        """The served id and the loaded engine of the chat model `name` (None: the default),
        held until the response has been sent; a 404 for an unknown name, a 400 for an
        embedding model, a 503 for a model that failed to load."""
        if self.stopping:  # never load a model for a server on its way out
            raise shutting_down()
        engine = await self.pool.acquire(name, "chat", request.scope)
        return self.pool.find(name).id, engine

    async def embedder(self, name: str | None, request: Request) -> tuple[str, Embedder]:
        """As `chat_engine`, for an embedding model."""
        if self.stopping:
            raise shutting_down()
        embedder = await self.pool.acquire(name, "embedding", request.scope)
        return self.pool.find(name).id, embedder

    async def compile(self, planned: Callable[[], Plan]) -> Plan:
        """`planned()` (a plan whose grammar may have to be compiled) in a grammar thread,
        off the event loop. The compile itself runs in the model's grammar sandbox
        (engine/grammarsandbox.py), which kills it past `settings.grammar_timeout`."""
        return await asyncio.get_running_loop().run_in_executor(self.compiler, planned)

    async def runner(self, name: str | None, kind: Kind, request: Request) -> tuple[str, Any]:
        """As `chat_engine`, for a model of another `kind` (a Reranker, a Transcriber); with
        no `name`, the first served model of that kind (else the default, refused)."""
        if self.stopping:
            raise shutting_down()
        if name is None:
            name = next((s.id for s in self.pool.served if s.kind == kind), None)
        runner = await self.pool.acquire(name, kind, request.scope)
        return self.pool.find(name).id, runner

    def stop_generating(self) -> None:
        """Shutdown, first step: refuse new requests and end every answer in flight (each
        stream then closes cleanly with an error event and [DONE]; see streaming.py)."""
        self.stopping = True
        for engine in self.pool.engines():
            engine.cancel_all()

    def model_cards(self) -> list[dict[str, Any]]:
        return [s.card() for s in self.pool.served]

    def model_card(self, name: str) -> dict[str, Any]:
        return self.pool.find(name).card()
