"""The two ways an answer leaves the server — one JSON body, or server-sent events — and the
per-request metrics.

Each generation is `Engine.astream()`: the engine's step thread posts tokens straight into
the event loop. When the client goes away, the request's cancel event is set and the step
loop cancels its handle at the next step (freeing its KV-cache blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..engine import Chunk
from .admission import CLIENT_GONE, DISCONNECT_POLL_SECONDS, shutting_down
from .errors import error_body, log
from .metrics import Metrics
from .schema import new_id, now, usage

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = "data: [DONE]\n\n"  # the last event of every stream, whatever ended it


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


def _finish(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def _cut_by_shutdown(request: Request, last: Chunk) -> bool:
    """The engine ended this answer because the server is shutting down (not the client)."""
    server = getattr(request.app.state, "server", None)
    return last.finish_reason == "cancelled" and bool(getattr(server, "stopping", False))


async def collect(
    chunks: AsyncIterator[Chunk],
    tracker: Tracker,
    name: str,
    chat: bool,
    request: Request,
    cancel: threading.Event,
) -> dict[str, Any]:
    """The whole answer; polls the client meanwhile and stops generating if it went away."""
    parts: list[str] = []

    async def consume() -> None:
        async for chunk in chunks:
            tracker.see(chunk)
            parts.append(chunk.text)

    task = asyncio.ensure_future(consume())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if not task.done() and await request.is_disconnected():
                cancel.set()
                request.scope["ovchat_outcome"] = CLIENT_GONE
        await task
    finally:
        tracker.done()
    last = tracker.last
    assert last is not None
    if _cut_by_shutdown(request, last):
        raise shutting_down()
    text, reason = "".join(parts), _finish(last.finish_reason)
    common = {"created": now(), "model": name, "system_fingerprint": None}
    tokens = usage(last.prompt_tokens, last.generated_tokens)
    if chat:
        message = {"role": "assistant", "content": text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reason}
        obj = "chat.completion"
        return {
            "id": new_id("chatcmpl"),
            "object": obj,
            **common,
            "choices": [choice],
            "usage": tokens,
        }
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": reason}
    return {
        "id": new_id("cmpl"),
        "object": "text_completion",
        **common,
        "choices": [choice],
        "usage": tokens,
    }


def _sse_line(obj: Any) -> str:
    # Server-sent events written by hand: one `data: <json>` line and a blank line per event,
    # exactly what OpenAI streams (no event names, no ids).
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def sse(
    chunks: AsyncIterator[Chunk],
    tracker: Tracker,
    name: str,
    chat: bool,
    include_usage: bool,
    request: Request,
) -> AsyncIterator[str]:
    rid = new_id("chatcmpl" if chat else "cmpl")
    created = now()
    obj = "chat.completion.chunk" if chat else "text_completion"
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def event(choice: dict[str, Any]) -> str:
        body = {"id": rid, "object": obj, "created": created, "model": name}
        body["system_fingerprint"] = None
        return _sse_line({**body, "choices": [choice], **extra})

    def piece(text: str, finish: str | None = None, first: bool = False) -> str:
        if chat:
            delta: dict[str, Any] = {"role": "assistant", "content": text} if first else {}
            if text and not first:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return event(choice)

    finished = False
    try:
        if chat:
            yield piece("", first=True)
        async for chunk in chunks:
            tracker.see(chunk)
            if chunk.text:
                yield piece(chunk.text)
        last = tracker.last
        assert last is not None
        if _cut_by_shutdown(request, last):
            # The answer is incomplete: say so in OpenAI's error shape, then end the stream.
            request.scope["ovchat_outcome"] = "503"
            finished = True
            yield _sse_line(shutting_down().body()) + DONE
            return
        out = [piece("", _finish(last.finish_reason))]
        if include_usage:
            body = {"id": rid, "object": obj, "created": created, "model": name}
            body["system_fingerprint"] = None
            out.append(
                _sse_line(
                    {
                        **body,
                        "choices": [],
                        "usage": usage(last.prompt_tokens, last.generated_tokens),
                    }
                )
            )
        out.append(DONE)
        finished = True
        yield "".join(out)
    except asyncio.CancelledError:
        request.scope["ovchat_outcome"] = CLIENT_GONE
        raise
    except Exception:  # headers are gone: report in the stream, as OpenAI does
        # The detail (it may hold paths or addresses) goes to the log, not to the client.
        log.exception("generation failed")
        request.scope["ovchat_outcome"] = "500"
        yield _sse_line(error_body(500, "generation failed", code="generation_failed")) + DONE
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
