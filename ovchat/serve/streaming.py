"""The two ways an answer leaves the server — one JSON body, or server-sent events — and the
per-request metrics. The bodies and events themselves are written by an AnswerWriter (writers.py:
chat, completions; responses.py: /v1/responses).

Each generation is `Engine.astream()`: the engine's step thread posts tokens straight into
the event loop. When the client goes away, the request's cancel event is set and the step
loop cancels its handle at the next step (freeing its KV-cache blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..engine import Chunk
from ..engine.remote import EngineGoneError
from .admission import CLIENT_GONE, DISCONNECT_POLL_SECONDS, shutting_down
from .enginegone import engine_gone, engine_gone_body
from .errors import error_body, log
from .metrics import Metrics
from .schema import usage
from .writers import AnswerWriter

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class Tracker:
    """Per-request metrics: TTFT from arrival, time per token, token counts, once at the end."""

    def __init__(self, metrics: Metrics, arrived: float) -> None:
        self.metrics = metrics
        self.arrived = arrived
        self.first_seen = False
        self.last: Chunk | None = None

    def see(self, chunk: Chunk) -> None:
        if not self.first_seen and chunk.generated_tokens:
            self.first_seen = True
            self.metrics.ttft.observe(time.perf_counter() - self.arrived)
        self.last = chunk

    def done(self) -> None:
        last = self.last
        if last is None:
            return
        self.metrics.prompt_tokens.inc(last.prompt_tokens)
        self.metrics.generated_tokens.inc(last.generated_tokens)
        if last.tokens_per_second:
            self.metrics.tpot.observe(1.0 / last.tokens_per_second)


def _cut_by_shutdown(request: Request, last: Chunk) -> bool:
    """The engine ended this answer because the server is shutting down (not the client)."""
    server = getattr(request.app.state, "server", None)
    return last.finish_reason == "cancelled" and bool(getattr(server, "stopping", False))


async def collect(
    chunks: AsyncIterator[Chunk],
    tracker: Tracker,
    writer: AnswerWriter,
    request: Request,
    cancel: threading.Event,
) -> dict[str, Any]:
    """The whole answer; polls the client meanwhile and stops generating if it went away."""
    asm = writer.assembler()

    async def consume() -> None:
        async for chunk in chunks:
            tracker.see(chunk)
            asm.feed(chunk)

    task = asyncio.ensure_future(consume())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if not task.done() and await request.is_disconnected():
                cancel.set()
                request.scope["ovchat_outcome"] = CLIENT_GONE
        await task
    except EngineGoneError:
        raise engine_gone() from None
    finally:
        tracker.done()
    last = tracker.last
    assert last is not None
    if _cut_by_shutdown(request, last):
        raise shutting_down()
    return writer.whole(asm.answers, usage(last.prompt_tokens, last.generated_tokens))


async def sse(
    chunks: AsyncIterator[Chunk],
    tracker: Tracker,
    writer: AnswerWriter,
    include_usage: bool,
    request: Request,
) -> AsyncIterator[str]:
    finished = False
    asm = writer.assembler()
    try:
        yield "".join(writer.opening())
        async for chunk in chunks:
            tracker.see(chunk)
            deltas = asm.feed(chunk)
            if chunk.finish_reason == "cancelled":  # no finish reason: the stream ends below
                deltas = [d for d in deltas if d.kind != "finish"]
            events = [e for d in deltas for e in writer.piece(d)]
            if events:
                yield "".join(events)
        last = tracker.last
        assert last is not None
        if _cut_by_shutdown(request, last):
            # The answer is incomplete: say so in OpenAI's error shape, then end the stream.
            request.scope["ovchat_outcome"] = "503"
            finished = True
            yield writer.failure(shutting_down().body())
            return
        tokens = usage(last.prompt_tokens, last.generated_tokens)
        finished = True
        yield "".join(writer.closing(asm.answers, tokens, include_usage))
    except asyncio.CancelledError:
        request.scope["ovchat_outcome"] = CLIENT_GONE
        raise
    except EngineGoneError:  # its engine process died: a 503, as for new requests
        log.error("an answer ended: its engine process stopped")
        request.scope["ovchat_outcome"] = "503"
        yield writer.failure(engine_gone_body())
    except Exception:  # headers are gone: report in the stream, as OpenAI does
        # The detail (it may hold paths or addresses) goes to the log, not to the client.
        log.exception("generation failed")
        request.scope["ovchat_outcome"] = "500"
        yield writer.failure(error_body(500, "generation failed", code="generation_failed"))
    finally:
        tracker.done()
        if not finished and "ovchat_outcome" not in request.scope:
            request.scope["ovchat_outcome"] = CLIENT_GONE


class GuardedStream(StreamingResponse):
    """A StreamingResponse that runs `on_close` however it ends, even if never started
    (a client gone before the first byte would otherwise leak its slot)."""

    def __init__(
        self, content: AsyncIterator[str], on_close: Callable[[], Awaitable[None]], **kw: Any
    ) -> None:
        super().__init__(content, headers=SSE_HEADERS, **kw)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with contextlib.suppress(Exception):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
            await self._on_close()
