"""POST /v1/messages and POST /v1/messages/count_tokens: Anthropic's Messages API on the
same path as every other generation (planner → admission → engine → a writer). The key may
come as `x-api-key` (Anthropic's header) or as a bearer token; errors are Anthropic's
`{"type": "error", "error": {"type", "message"}}` (protocol_errors.py)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from ...errors import OptionError
from ..errors import APIError
from ..routes import plan_request, run
from ..state import ServerState
from .schema import CountRequest, MessagesRequest
from .writer import MessagesWriter


def add_anthropic_routes(app: FastAPI, server: ServerState) -> None:
    @app.post("/v1/messages")
    async def messages(body: MessagesRequest, request: Request) -> Response:
        arrived = time.perf_counter()  # loading the model, if it must, counts in its TTFT
        name, eng = await server.chat_engine(body.model, request)
        plan = await plan_request(server, eng, body)
        writer = MessagesWriter(name, plan.tools is not None, plan.prompt_tokens)
        return await run(server, request, eng, plan, writer, body.stream, False, arrived)

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(body: CountRequest, request: Request) -> dict[str, Any]:
        _, eng = await server.chat_engine(body.model, request)
        try:
            ids = eng.prompt_ids(body.engine_prompt(), body.tool_set())
        except OptionError as e:
            raise APIError.from_option(e, {"prompt": "messages"}) from e
        return {"input_tokens": len(ids)}
