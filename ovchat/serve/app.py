"""The HTTP app: OpenAI-compatible endpoints over one batching Engine, and the web chat page.

`create_app(settings, engine=None)` is the factory; generation lives in `streaming.py`, the
API key and body limit in `guard.py`, the request shapes in `schema.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine import Engine, GenerationOptions, Tokens
from ..errors import ContextLengthError, OptionError
from .guard import Guard
from .metrics import CONTENT_TYPE, Metrics
from .schema import APIError, ChatRequest, CompletionRequest, error_body
from .settings import Settings
from .streaming import (
    CLIENT_GONE,
    ClientGone,
    GuardedStream,
    Slots,
    Tracker,
    collect,
    sse,
)

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_ANSWER_TOKENS = 1024  # when a request names no max_tokens (then cut to the window)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The server for `settings`. Pass `engine` to share a loaded one (it is not closed then);
    otherwise one is loaded (batching backend) when the app starts and closed when it stops.
    """
    metrics = Metrics()
    slots = Slots(settings.max_running, settings.max_waiting, metrics)
    state: dict[str, Any] = {"engine": engine}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = state["engine"] is None
        if owned:
            state["engine"] = await asyncio.to_thread(settings.load_engine)
        eng: Engine = state["engine"]

        def held() -> float:
            load = eng.load()
            return load.active + load.pending

        metrics.watch_engine(held, lambda: eng.load().kv_cache_usage)
        try:
            yield
        finally:
            if owned:
                eng.close()

    app = FastAPI(title="ovchat", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(Guard, settings=settings, metrics=metrics)
    app.state.metrics = metrics
    app.state.slots = slots
    _install_error_handlers(app)

    def get_engine() -> Engine:
        eng = state["engine"]
        if eng is None:
            raise APIError(503, "the model is still loading", code="model_loading")
        return eng

    def check_model(name: str | None) -> str:
        eng = get_engine()
        served = eng.info.name
        # The served name is the export's name; its directory name is accepted as an alias.
        if name is None or name in (served, eng.info.path.name):
            return served
        raise APIError(
            404,
            f"The model '{name}' does not exist; this server serves '{served}'.",
            param="model",
            code="model_not_found",
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        eng = state["engine"]
        return {
            "status": "ok" if eng is not None else "loading",
            "model": eng.info.name if eng is not None else None,
            "running": slots.running,
            "waiting": slots.waiting,
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(get_engine())]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str) -> dict[str, Any]:
        check_model(name)
        return _model_card(get_engine())

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request) -> Response:
        name = check_model(body.model)
        messages = [m.as_dict() for m in body.messages]
        return await _generate(request, body, name, messages, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        name = check_model(body.model)
        return await _generate(request, body, name, body.text(), chat=False)

    async def _generate(
        request: Request, body: ChatRequest | CompletionRequest, name: str, prompt: Any, chat: bool
    ) -> Response:
        eng = get_engine()
        arrived = time.perf_counter()
        options, ids = await _options(eng, body, prompt)
        await slots_acquire(request)
        cancel = threading.Event()
        chunks = eng.astream(Tokens(ids), options, cancel)  # sets `cancel` however it is left
        tracker = Tracker(metrics, arrived)
        if body.stream:
            events = sse(chunks, tracker, name, chat, body.include_usage(), request)
            return GuardedStream(events, slots.release, media_type="text/event-stream")
        try:
            return JSONResponse(await collect(chunks, tracker, name, chat, request, cancel))
        finally:
            await slots.release()

    async def slots_acquire(request: Request) -> None:
        try:
            await slots.acquire(request)
        except ClientGone:
            request.scope["ovchat_outcome"] = CLIENT_GONE
            raise APIError(400, "client disconnected") from None

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _short(e: Exception) -> str:
    """A C++ exception's useful line (not "Exception from /path/file.cpp:97:")."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith("Exception from ")]
    return (useful or lines or [type(e).__name__])[0][:200]


def _model_card(eng: Engine) -> dict[str, Any]:
    created = int(eng.info.path.stat().st_mtime)
    return {"id": eng.info.name, "object": "model", "created": created, "owned_by": "ovchat"}


async def _options(
    eng: Engine, body: ChatRequest | CompletionRequest, prompt: Any
) -> tuple[GenerationOptions, list[int]]:
    """Validate the prompt against the window and build the options (a 400 on any problem)."""
    ctx = eng.info.context_length
    budget = body.budget()
    param = (
        "max_completion_tokens" if getattr(body, "max_completion_tokens", None) else "max_tokens"
    )
    if budget is not None and budget > ctx:
        raise APIError(
            400,
            f"{param} is {budget}, more than the model's context window of {ctx} tokens",
            param=param,
            code="invalid_value",
        )
    where = "messages" if isinstance(body, ChatRequest) else "prompt"
    try:
        # Inline, not in a thread: genai's step() holds the GIL, so a thread hop costs a step.
        ids = eng.prompt_ids(prompt)  # tokenized once: the engine is handed these ids
        n_prompt = len(ids)
    except Exception as e:  # a template refusing a role order, text the tokenizer rejects
        raise APIError(400, f"the {where} cannot be tokenized: {_short(e)}", param=where) from e
    if n_prompt == 0:
        raise APIError(400, f"the {where} is empty", param=where)
    if n_prompt >= ctx:
        raise APIError(
            400,
            f"This model's maximum context length is {ctx} tokens. However, your prompt is "
            f"{n_prompt} tokens; shorten it to leave room for the answer.",
            param=where,
            code="context_length_exceeded",
        )
    try:
        # An answer that would overflow the window is cut to what fits (finish_reason "length").
        options = GenerationOptions(
            max_new_tokens=min(budget or DEFAULT_ANSWER_TOKENS, ctx - n_prompt),
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            stop=body.stop_tuple(),
            ignore_eos=body.ignore_eos,
        ).validate()
        return options, ids
    except OptionError as e:
        raise APIError(400, str(e)) from e


# -- errors: every one in OpenAI's shape -----------------------------------------------------
def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_validation_body(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail) if exc.detail else "error"
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        return JSONResponse(error_body(exc.status_code, message), exc.status_code)

    @app.exception_handler(ContextLengthError)
    async def too_long(request: Request, exc: ContextLengthError) -> JSONResponse:
        return JSONResponse(error_body(400, str(exc), code="context_length_exceeded"), 400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(500, f"internal error: {type(exc).__name__}"), 500)


def _validation_body(exc: RequestValidationError) -> dict[str, Any]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    kind = first.get("type")
    if kind == "json_invalid":
        reason = first.get("ctx", {}).get("error", "invalid JSON")
        return error_body(
            400, f"We could not parse the JSON body of your request: {reason}", code="invalid_json"
        )
    param = _param(first.get("loc", ()))
    msg = str(first.get("msg", "invalid request"))
    if not param:
        text = "the request needs a JSON object body" + ("" if kind == "missing" else f": {msg}")
        return error_body(400, text, code="invalid_body")
    if kind == "missing":
        return error_body(
            400, f"'{param}' is required", param=param, code="missing_required_parameter"
        )
    return error_body(400, f"invalid '{param}': {msg}", param=param, code="invalid_value")


def _param(loc: Any) -> str:
    """("body", "messages", 0, "content", "str") -> "messages[0].content".

    pydantic adds union branches and validator names to the location; they are not fields.
    """
    out = ""
    for p in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(p, int):
            out += f"[{p}]"
        elif str(p).isidentifier() and str(p) not in _NOT_FIELDS:
            out += f".{p}" if out else str(p)
    return out


_NOT_FIELDS = {"str", "int", "float", "bool", "list", "dict", "none"}
