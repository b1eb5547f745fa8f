"""The OpenAI endpoints: POST /v1/chat/completions, POST /v1/completions, POST /v1/responses,
GET /v1/models (POST /v1/embeddings is in embeddings.py).

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

from ..engine import Engine, Plan
from ..errors import OptionError
from .admission import CLIENT_GONE, ClientGone
from .errors import APIError
from .images import request_images
from .responses import ResponsesShape
from .responses_schema import ResponsesRequest
from .schema import ChatRequest, CompletionRequest
from .shapes import ChatShape, CompletionShape, Shape
from .state import ServerState
from .streaming import GuardedStream, Tracker, collect, sse


def add_openai_routes(app: FastAPI, server: ServerState) -> None:
    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": server.model_cards()}

    @app.get("/v1/models/{name:path}")
    async def model(name: str) -> dict[str, Any]:
        return server.model_card(name)

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request) -> Response:
        return await _generate(server, request, body, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        return await _generate(server, request, body, chat=False)

    @app.post("/v1/responses")
    async def responses(body: ResponsesRequest, request: Request) -> Response:
        arrived = time.perf_counter()  # loading the model, if it must, counts in its TTFT
        name, eng = await server.chat_engine(body.model, request)
        plan = plan_request(server, eng, body)
        shape = ResponsesShape(name, body, plan.tools is not None, plan.options.logprobs)
        return await run(server, request, eng, plan, shape, body.stream, False, arrived)


def plan_request(server: ServerState, eng: Engine, body: Any) -> Plan:
    """Options, tools, tokens, window and budget: the planner's rules, errors as 400s.

    `body` is a ChatRequest, a CompletionRequest or a ResponsesRequest: each has
    engine_prompt(), options(), tool_set(), budget() and params()."""
    try:
        # Inline, not in a thread: genai's step() holds the GIL, so a thread hop costs a step.
        # (A new constraint is compiled here too: ~1 ms, once per distinct schema.)
        strict = body.budget() is not None  # OpenAI: an asked budget beyond the window is an error
        imgs = request_images(body, eng, server.settings.allow_image_urls)
        more = {"images": imgs.sources, "image_names": imgs.names} if imgs else {}
        plan = eng.plan(
            body.engine_prompt(),
            body.options(),
            tools=body.tool_set(),
            strict_budget=strict,
            **more,
        )
    except OptionError as e:
        raise APIError.from_option(e, body.params()) from e
    kind = "tools" if plan.tools is not None else (plan.options.constraint or ("",))[0]
    if kind:
        server.metrics.constrained.labels(kind).inc()
    return plan


async def _generate(
    server: ServerState, request: Request, body: ChatRequest | CompletionRequest, chat: bool
) -> Response:
    arrived = time.perf_counter()  # loading the model, if it must, counts in its TTFT
    name, eng = await server.chat_engine(body.model, request)
    plan = plan_request(server, eng, body)
    o = plan.options
    top = bool(getattr(body, "top_logprobs", None) or (not chat and body.logprobs))
    kind = ChatShape if chat else CompletionShape
    shape = kind(name, o.n, plan.tools is not None, o.logprobs, top)
    return await run(server, request, eng, plan, shape, body.stream, body.include_usage(), arrived)


async def run(
    server: ServerState,
    request: Request,
    eng: Engine,
    plan: Plan,
    shape: Shape,
    stream: bool,
    include_usage: bool,
    arrived: float,
) -> Response:
    """Admission, then the answer as one JSON body or as server-sent events."""
    try:
        await server.slots.acquire(request)
    except ClientGone:
        request.scope["ovchat_outcome"] = CLIENT_GONE
        raise APIError(400, "client disconnected") from None
    cancel = threading.Event()
    chunks = eng.astream(plan, cancel=cancel)  # sets `cancel` however it is left
    tracker = Tracker(server.metrics, arrived)
    if stream:
        events = sse(chunks, tracker, shape, include_usage, request)
        return GuardedStream(events, server.slots.release, media_type="text/event-stream")
    try:
        return JSONResponse(await collect(chunks, tracker, shape, request, cancel))
    finally:
        await server.slots.release()
