"""The app factory: `create_app(settings, engine=None)` builds one server with no globals.

The OpenAI endpoints are in routes.py, errors in errors.py, the API key and body limit in
guard.py; here are the lifespan (load and close the engine), /health, /metrics and the page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from ..engine import Engine
from .errors import install_error_handlers
from .guard import Guard
from .metrics import CONTENT_TYPE
from .openapi import install_openapi
from .routes import add_openai_routes
from .settings import ServerSettings
from .state import ServerState

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: ServerSettings, engine: Engine | None = None) -> FastAPI:
    """The server for `settings`. Pass `engine` to share a loaded one (it is not closed then);
    otherwise one is loaded (batching backend) when the app starts and closed when it stops.
    """
    server = ServerState(settings, engine=engine)
    metrics, slots = server.metrics, server.slots

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = server.engine is None
        if owned:
            server.engine = await asyncio.to_thread(settings.load_engine)
        eng = server.get_engine()

        def held() -> float:
            status = eng.status()
            return status.active + status.pending

        metrics.watch_engine(
            held, lambda: eng.status().kv_cache_usage, lambda: eng.status().kv_cache_bytes
        )
        try:
            yield
        finally:
            if owned:
                eng.close()

    app = FastAPI(title="ovchat", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(Guard, settings=settings, metrics=metrics, routes=app.router.routes)
    app.state.server = server
    app.state.metrics = metrics
    app.state.slots = slots
    install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        eng = server.engine
        return {
            "status": "ok" if eng is not None else "loading",
            "model": eng.info.name if eng is not None else None,
            "running": slots.running,
            "waiting": slots.waiting,
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    add_openai_routes(app, server)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_openapi(app)
    return app
