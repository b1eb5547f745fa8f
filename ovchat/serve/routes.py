"""The OpenAI endpoints: POST /v1/chat/completions, POST /v1/completions, POST /v1/responses,
GET /v1/models (POST /v1/embeddings is in embeddings.py).

A request flows: shape checked (schema) → GenerationOptions → the engine's planner
(tokenized once, window and budget checked) → admission → `Engine.astream` → one JSON body
or server-sent events.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..engine import Engine, Plan
from ..engine.thinking_budget import budgeted
from ..errors import OptionError
from .admission import CLIENT_GONE, ClientGone
from .errors import APIError
from .fairness import name_client
from .images import request_images
from .responses import ResponsesWriter
from .responses_schema import ResponsesRequest
from .schema import ChatRequest, CompletionRequest
from .state import ServerState
from .streaming import GuardedStream, Tracker, collect, sse
from .writers import AnswerWriter, ChatWriter, CompletionWriter


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
        plan = await plan_request(server, eng, body)
        name_client(request, body.user)
        writer = ResponsesWriter(name, body, plan.tools is not None, plan.options.logprobs)
        return await run(server, request, eng, plan, writer, body.stream, False, arrived)


async def plan_request(server: ServerState, eng: Engine, body: Any) -> Plan:
    """Options, tools, tokens, window and budget: the planner's rules, errors as 400s.

    `body` is a ChatRequest, a CompletionRequest or a ResponsesRequest: each has
    engine_prompt(), options(), tool_set(), budget() and params()."""
    try:
        strict = body.budget() is not None  # OpenAI: an asked budget beyond the window is an error
        prompt, options, tools = body.engine_prompt(), body.options(), body.tool_set()
        thinking = body.thinks() if hasattr(body, "thinks") else None
        imgs = await request_images(body, eng, server.settings.allow_image_urls)
        more: dict[str, Any] = {"images": imgs.sources, "image_names": imgs.names} if imgs else {}
        planned = partial(
            eng.plan, prompt, options, tools=tools, strict_budget=strict, thinking=thinking,
            grammar_timeout=server.settings.grammar_timeout, **more,
        )  # fmt: skip
        if options.constraint is None and tools is None:
            # Inline, not in a thread: genai's step() holds the GIL, so a hop costs a step.
            plan = planned()
        else:  # a grammar may have to be compiled (in the model's grammar sandbox): off the loop
            plan = await server.compile(planned)
    except OptionError as e:
        raise APIError.from_option(e, body.params()) from e
    budget = body.reasoning_budget() if hasattr(body, "reasoning_budget") else None
    if budget is not None:
        if plan.options.n > 1:
            raise APIError(400, "a thinking budget needs n = 1", param="thinking_budget")
        plan = dataclasses.replace(plan, reasoning_budget=budget)
    kind = "tools" if plan.tools is not None else (plan.options.constraint or ("",))[0]
    if kind:
        server.metrics.constrained.labels(kind).inc()
    return plan


async def _generate(
    server: ServerState, request: Request, body: ChatRequest | CompletionRequest, chat: bool
) -> Response:
    arrived = time.perf_counter()  # loading the model, if it must, counts in its TTFT
    name, eng = await server.chat_engine(body.model, request)
    plan = await plan_request(server, eng, body)
    name_client(request, body.user)
    o = plan.options
    top = bool(getattr(body, "top_logprobs", None) or (not chat and body.logprobs))
    kind = ChatWriter if chat else CompletionWriter
    writer = kind(name, o.n, plan.tools is not None, o.logprobs, top)
    return await run(server, request, eng, plan, writer, body.stream, body.include_usage(), arrived)


async def run(
    server: ServerState,
    request: Request,
    eng: Engine,
    plan: Plan,
    writer: AnswerWriter,
    stream: bool,
    include_usage: bool,
    arrived: float,
    media_type: str = "text/event-stream",
) -> Response:
    """Admission, then the answer as one JSON body or as a stream of events (server-sent
    events; Ollama's NDJSON lines with its `media_type`)."""
    try:
        await server.slots.acquire(request)
    except ClientGone:
        request.scope["ovchat_outcome"] = CLIENT_GONE
        raise APIError(400, "client disconnected") from None
    writer.reasoning = plan.reasoning
    cancel = threading.Event()
    if plan.reasoning and plan.reasoning_budget is not None:
        chunks = budgeted(eng, plan, plan.reasoning_budget, cancel)
    else:
        chunks = eng.astream(plan, cancel=cancel)  # sets `cancel` however it is left
    tracker = Tracker(server.metrics, arrived)
    if stream:
        events = sse(chunks, tracker, writer, include_usage, request)
        release = functools.partial(server.slots.release, request)
        return GuardedStream(events, release, media_type=media_type)
    try:
        return JSONResponse(await collect(chunks, tracker, writer, request, cancel))
    finally:
        await server.slots.release(request)
