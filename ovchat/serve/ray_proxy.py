"""Ray Serve's HTTP proxy, made to fail as OpenAI does when a replica dies under a request.

When a replica's process dies, Serve's proxy ends the request without an answer (uvicorn
then sends a plain-text 500) or, mid-stream, cuts the connection; neither is something an
OpenAI client can report. This ASGI middleware, installed in the proxy through Ray's
RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH (= PROXY_CALLBACK), makes that:
- nothing sent yet: the request is sent once more (to a live replica: Serve's router skips
  the dead one; an LLM completion has no side effect to repeat), and if that fails too an
  OpenAI-shaped 503 `replica_failed` is answered;
- a stream already started: an OpenAI-shaped error event and `data: [DONE]` end it, as
  ovchat's own server ends a stream it cannot finish (streaming.py);
- a JSON body half sent (never happens: ovchat sends JSON bodies in one piece): it is ended.

Hand-written: Serve has no setting for either (its retries stop at the router's choice of
a replica; a request already assigned fails with the replica).
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from starlette.middleware import Middleware

from .errors import error_body
from .protocol_errors import reshape

log = logging.getLogger("ovchat.serve")

PROXY_CALLBACK = "ovchat.serve.ray_proxy:middlewares"
PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
ATTEMPTS = 2  # a request that got nothing back is sent once more
ATTEMPT_HEADER = b"x-ovchat-attempt"  # on an answer that took more than one attempt
MAX_REPLAY_BYTES = 4 << 20  # bodies up to this are kept for a retry (ovchat takes 1 MiB)
FAILED = error_body(
    503,
    "The replica serving this request stopped; the request was not completed. Try again.",
    code="replica_failed",
)


def middlewares() -> list[Middleware]:
    """What Ray's proxy calls (PROXY_CALLBACK) for the middlewares to install."""
    return [Middleware(ReplicaFailures)]


class _Watch:
    """What the app sent back: whether an answer started, ended, and as what."""

    def __init__(self, send: Any, attempt: int = 1) -> None:
        self.send = send
        self.attempt = attempt
        self.started = False
        self.ended = False
        self.event_stream = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = dict(message.get("headers") or [])
            self.event_stream = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            if self.attempt > 1:
                extra = [(ATTEMPT_HEADER, str(self.attempt).encode())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.ended = True
        await self.send(message)


class ReplicaFailures:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replay = _Replay(receive)
        for attempt in range(1, ATTEMPTS + 1):
            watch = _Watch(send, attempt)
            try:
                await self.app(scope, replay.receive if attempt > 1 else replay.record, watch)
            except Exception:
                log.warning("the proxy's request failed", exc_info=True)
            if watch.ended:
                return
            if watch.started or not replay.replayable or replay.client_gone:
                break
            log.warning("%s %s got no answer (attempt %d)", scope["method"], scope["path"], attempt)
        with contextlib.suppress(Exception):  # the client may be gone too
            await _end(watch, send, scope["path"])


async def _end(watch: _Watch, send: Any, path: str = "/v1/") -> None:
    if not watch.started:  # in the shape of the path's protocol (Ollama's, Anthropic's)
        body = json.dumps(reshape(path, 503, FAILED)).encode()
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif watch.event_stream:
        event = f"data: {json.dumps(FAILED)}\n\ndata: [DONE]\n\n".encode()
        await send({"type": "http.response.body", "body": event})
    else:
        await send({"type": "http.response.body", "body": b""})


class _Replay:
    """The request body as the first attempt read it, for a second attempt to read again."""

    def __init__(self, receive: Any) -> None:
        self._receive = receive
        self.chunks: list[dict[str, Any]] = []
        self.size = 0
        self.complete = False
        self.replayable = True
        self.client_gone = False  # then Serve ends the request unanswered too: no retry

    async def record(self) -> dict[str, Any]:
        message: dict[str, Any] = await self._receive()
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            self.replayable = self.replayable and self.size <= MAX_REPLAY_BYTES
            if self.replayable:
                self.chunks.append(message)
            self.complete = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self.client_gone = True
        return message

    async def receive(self) -> dict[str, Any]:
        if self.chunks:
            return self.chunks.pop(0)
        if not self.complete:  # the first attempt stopped reading mid-body: go on from there
            return await self.record()
        return await self.record()  # after the body: the client's disconnect, if it comes
