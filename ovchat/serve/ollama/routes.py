"""Ollama's endpoints on the same server and port as the OpenAI ones. Generation goes the
same way (planner → admission → engine → a writer): only the request's mapping (schema.py)
and the answer's lines (writer.py) are Ollama's. Errors are Ollama's `{"error": "..."}`
(protocol_errors.py), with the status codes Ollama uses.

The model endpoints describe the models this server serves: /api/tags lists them,
/api/ps the loaded ones, /api/show one; /api/pull answers for a served model at once and
otherwise pulls into ovchat's library (sources ovchat can reach: its own recipe tags), for
the next start of the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ...engine import Engine, Plan
from ...library.manage import _chat_template
from ...library.store import size_bytes
from ...versions import versions
from ..errors import APIError, echo
from ..routes import plan_request, run
from ..served import Served
from ..state import ServerState
from ..taskcall import in_slot
from .schema import ChatRequest, EmbedRequest, GenerateRequest, ModelRequest, _Generate
from .writer import OllamaWriter, created_at, line

NDJSON = "application/x-ndjson"
# What /api/version reports: the Ollama API version whose endpoints and fields this server
# speaks (clients gate features on it), and ovchat's own.
OLLAMA_API_VERSION = "0.12.0"


def add_ollama_routes(app: FastAPI, server: ServerState) -> None:
    @app.post("/api/chat")
    async def chat(body: ChatRequest, request: Request) -> Response:
        return await _generate(server, request, body, chat=True, empty=not body.messages)

    @app.post("/api/generate")
    async def generate(body: GenerateRequest, request: Request) -> Response:
        return await _generate(server, request, body, chat=False, empty=not body.prompt)

    @app.post("/api/embed")
    async def embed(body: EmbedRequest, request: Request) -> dict[str, Any]:
        arrived = time.perf_counter()
        texts = body.texts()
        if not texts:
            raise APIError(400, "'input' must not be empty", param="input")
        name, embedder = await server.embedder(body.model, request)
        _keep_alive(server, body.model, body.keep_alive)
        result = await in_slot(server, request, embedder.embed, texts, dimensions=body.dimensions)
        server.metrics.embedded_tokens.inc(result.total_tokens)
        return {
            "model": name,
            "embeddings": [list(v) for v in result.vectors],
            "total_duration": int((time.perf_counter() - arrived) * 1e9),
            "load_duration": 0,
            "prompt_eval_count": result.total_tokens,
        }

    @app.get("/api/tags")
    async def tags() -> dict[str, Any]:
        return {"models": [_describe(s) for s in server.pool.served]}

    @app.get("/api/ps")
    async def ps() -> dict[str, Any]:
        loaded = [s for s in server.pool.served if s.state == "loaded"]
        return {"models": [_running(server, s) for s in loaded]}

    @app.post("/api/show")
    async def show(body: ModelRequest) -> dict[str, Any]:
        s = server.pool.find(body.which())
        info = s.info
        return {
            "modelfile": "",
            "parameters": "",
            "template": _chat_template(s.spec.path) or "",
            "details": _details(s),
            "model_info": {
                "general.architecture": _family(s),
                "general.basename": info.name,
                f"{_family(s)}.context_length": info.context_length,
            },
            "capabilities": _capabilities(s),
            "modified_at": _modified(s),
        }

    @app.get("/api/version")
    async def version() -> dict[str, Any]:
        return {"version": OLLAMA_API_VERSION, "ovchat": versions(["ovchat"]).get("ovchat")}

    @app.post("/api/pull")
    async def pull(body: ModelRequest, request: Request) -> Response:
        return await _pull(server, body)


async def _generate(
    server: ServerState, request: Request, body: _Generate, chat: bool, empty: bool
) -> Response:
    arrived = time.perf_counter()
    name, eng = await server.chat_engine(body.model, request)
    _keep_alive(server, body.model, body.keep_alive)
    if empty:  # Ollama: no prompt loads the model (keep_alive 0 unloads it)
        reason = "unload" if body.keep_alive_seconds() == 0 else "load"
        done = {"model": name, "created_at": created_at(), "done": True, "done_reason": reason}
        key = "message" if chat else "response"
        done[key] = {"role": "assistant", "content": ""} if chat else ""
        return JSONResponse(done)
    plan = _fit(eng, await plan_request(server, eng, body), body)
    writer = OllamaWriter(name, plan.tools is not None, chat, arrived)
    return await run(server, request, eng, plan, writer, body.stream, False, arrived, NDJSON)


def _fit(eng: Engine, plan: Plan, body: _Generate) -> Plan:
    """num_ctx: the answer ends where prompt + answer fill num_ctx tokens (a window larger
    than the model's is the model's)."""
    num_ctx = body.opts.num_ctx if body.opts else None
    if not num_ctx or num_ctx >= eng.info.context_length:
        return plan
    room = num_ctx - plan.prompt_tokens
    if room < 1:
        raise APIError(
            400,
            f"the prompt is {plan.prompt_tokens} tokens, more than num_ctx ({num_ctx})",
            param="options.num_ctx",
        )
    if plan.options.max_new_tokens <= room:
        return plan
    options = plan.options.replace(max_new_tokens=room)
    return eng.checked(dataclasses.replace(plan, options=options, config=None))


def _keep_alive(server: ServerState, model: str, value: float | str | None) -> None:
    from .schema import keep_alive_seconds

    server.pool.keep_alive(model, keep_alive_seconds(value))


# -- the models -------------------------------------------------------------------------------
def _family(s: Served) -> str:
    arch = s.info.manifest.get("architecture") or s.info.manifest.get("model_type")
    return str(arch or "openvino")


def _details(s: Served) -> dict[str, Any]:
    recipe = (s.info.manifest.get("recipe") or {}).get("applied") or {}
    quant = recipe.get("weight_format") if isinstance(recipe, dict) else None
    return {
        "parent_model": "",
        "format": "openvino",
        "family": _family(s),
        "families": [_family(s)],
        "parameter_size": "",
        "quantization_level": str(quant or "").upper(),
    }


def _capabilities(s: Served) -> list[str]:
    if s.kind == "embedding":
        return ["embedding"]
    template = _chat_template(s.spec.path) or ""
    caps = ["completion", "tools"]  # tools: ovchat's generic tool prompt serves any template
    if "<think>" in template or "enable_thinking" in template:
        caps.append("thinking")
    if s.kind == "vision":
        caps.append("vision")
    return caps


def _modified(s: Served) -> str:
    try:
        t = s.spec.path.stat().st_mtime
    except OSError:
        t = 0.0
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _digest(s: Served) -> str:
    return hashlib.sha256(str(s.spec.path).encode()).hexdigest()


def _size(s: Served) -> int:
    try:
        return size_bytes(s.spec.path)
    except OSError:
        return 0


def _describe(s: Served) -> dict[str, Any]:
    return {
        "name": s.id,
        "model": s.id,
        "modified_at": _modified(s),
        "size": _size(s),
        "digest": _digest(s),
        "details": _details(s),
    }


def _running(server: ServerState, s: Served) -> dict[str, Any]:
    keep = s.keep_alive if s.keep_alive is not None else server.settings.keep_alive
    never = s.pinned or keep is None or keep < 0
    expires = datetime.fromtimestamp(
        (s.last_used or time.time()) + (0 if never else float(keep or 0)), UTC
    )
    return {
        **_describe(s),
        # far in the future when it never unloads, as Ollama reports keep_alive -1
        "expires_at": "2318-01-01T00:00:00Z" if never else expires.isoformat(),
        "size_vram": 0,
        "context_length": s.info.context_length,
    }


async def _pull(server: ServerState, body: ModelRequest) -> Response:
    """A served model: done at once. Otherwise ovchat's library pull (its own recipe tags);
    the model is served from the next start of the server."""
    name = body.which()
    try:
        server.pool.find(name)
        steps = [{"status": "pulling manifest"}, {"status": "success"}]
    except APIError:
        await asyncio.to_thread(_library_pull, name)
        steps = [{"status": "pulling manifest"}, {"status": "writing manifest"},
                 {"status": "success"}]  # fmt: skip
    if not body.stream:
        return JSONResponse(steps[-1])

    async def lines() -> Any:
        for s in steps:
            yield line(s)

    return StreamingResponse(lines(), media_type=NDJSON)


def _library_pull(name: str) -> None:
    from ...errors import OvchatError
    from ...library.names import parse_ref
    from ...library.resolve import find_entry

    try:
        find_entry(parse_ref(name), pull=True)
    except OvchatError as e:
        raise APIError(404, f"pull model manifest: {echo(str(e))}", param="model") from e
