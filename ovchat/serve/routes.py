"""The OpenAI endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models.

A request flows: shape checked (schema) → GenerationOptions → the engine's planner
(tokenized once, window and budget checked) → admission → `Engine.astream` → one JSON body
or server-sent events.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..engine import Plan
from ..errors import OptionError
from .admission import CLIENT_GONE, ClientGone
from .errors import APIError
from .schema import ChatRequest, CompletionRequest
from .state import ServerState
from .streaming import GuardedStream, Tracker, collect, sse


def add_openai_routes(app: FastAPI, server: ServerState) -> None:
    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [server.model_card()]}

    @app.get("/v1/models/{name:path}")
    async def model(name: str) -> dict[str, Any]:
        server.check_model(name)
        return server.model_card()

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request) -> Response:
        return await _generate(server, request, body, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        return await _generate(server, request, body, chat=False)


def plan_request(server: ServerState, body: ChatRequest | CompletionRequest) -> Plan:
    """Options, tokens, window and budget: the planner's rules, errors as 400s."""
    eng = server.get_engine()
    try:
        # Inline, not in a thread: genai's step() holds the GIL, so a thread hop costs a step.
        strict = body.budget() is not None  # OpenAI: an asked budget beyond the window is an error
        return eng.plan(body.engine_prompt(), body.options(), strict_budget=strict)
    except OptionError as e:
        raise APIError.from_option(e, body.params()) from e


async def _generate(
    server: ServerState, request: Request, body: ChatRequest | CompletionRequest, chat: bool
) -> Response:
    name = server.check_model(body.model)
    eng = server.get_engine()
    arrived = time.perf_counter()
    plan = plan_request(server, body)
    try:
        await server.slots.acquire(request)
    except ClientGone:
        request.scope["ovchat_outcome"] = CLIENT_GONE
        raise APIError(400, "client disconnected") from None
    cancel = threading.Event()
    chunks = eng.astream(plan, cancel=cancel)  # sets `cancel` however it is left
    tracker = Tracker(server.metrics, arrived)
    if body.stream:
        events = sse(chunks, tracker, name, chat, body.include_usage(), request)
        return GuardedStream(events, server.slots.release, media_type="text/event-stream")
    try:
        return JSONResponse(await collect(chunks, tracker, name, chat, request, cancel))
    finally:
        await server.slots.release()
