"""The app factory: `create_app(settings, engine=None)` builds one server with no globals.

The OpenAI endpoints are in routes.py, errors in errors.py, the API key and body limit in
guard.py, the models in pool.py; here are the lifespan (the pool's start and stop), /health,
/metrics and the page.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from ..engine import Engine
from .anthropic import add_anthropic_routes
from .audio import add_audio_routes
from .embeddings import add_embedding_routes
from .errors import install_error_handlers
from .guard import Guard
from .metrics import CONTENT_TYPE
from .ollama import add_ollama_routes
from .openapi import install_openapi
from .pool import ReleaseModels
from .rerank import add_rerank_routes
from .routes import add_openai_routes
from .settings import ServerSettings
from .state import ServerState
from .tokenize import add_tokenize_routes

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: ServerSettings, engine: Engine | None = None) -> FastAPI:
    """The server for `settings`. Pass `engine` to share a loaded one (it is not closed then);
    otherwise the models of `settings` (`models`, or `model_dir` alone) are served from a
    pool: the first loads when the app starts, the others on first use (serve/pool.py).
    """
    server = ServerState(settings, engine=engine)
    metrics, slots, pool = server.metrics, server.slots, server.pool

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every loaded chat model's requests and KV-cache bytes, and the fullest KV cache.
        metrics.watch_engine(
            lambda: pool.watch(lambda e: e.status().active + e.status().pending, sum),
            lambda: pool.watch(lambda e: e.status().kv_cache_usage, max),
            lambda: pool.watch(lambda e: e.status().kv_cache_bytes, sum),
        )
        await pool.start()  # loads the default model (an engine passed in is used as is)
        try:
            yield
        finally:
            await pool.close()  # unloads what the pool loaded; never a passed-in engine
            server.compiler.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="ovchat", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(Guard, settings=settings, metrics=metrics, routes=app.router.routes)
    app.add_middleware(ReleaseModels, pool=lambda: pool)
    app.state.server = server
    app.state.metrics = metrics
    app.state.slots = slots
    install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok" if pool.started else "loading",
            "model": pool.default.id if pool.served else None,
            "models": {s.id: s.state for s in pool.served},
            "running": slots.running,
            "waiting": slots.waiting,
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    add_openai_routes(app, server)
    add_embedding_routes(app, server)
    add_tokenize_routes(app, server)
    add_ollama_routes(app, server)
    add_anthropic_routes(app, server)
    add_rerank_routes(app, server)  # its path aliases: outermost, before the guard
    add_audio_routes(app, server)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_openapi(app)
    return app
