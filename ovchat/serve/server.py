"""The HTTP server around the app: uvicorn, with the limits it lacks and a clean stop.

Hand-written where uvicorn has no setting for it:
- a deadline for a request's headers (uvicorn has none: a client that connects and sends
  half a request line holds its connection forever) — the body's deadline is the Guard's;
- a cap on open connections, answered in OpenAI's error shape (uvicorn's limit_concurrency
  answers plain text, and counts requests, not connections);
- OpenAI-shaped answers to requests that are not HTTP at all, or whose headers exceed
  uvicorn's limit (h11's 16 KiB, which h11 checks only on a head still incomplete), where
  uvicorn sends a plain-text 400;
- no WebSockets (the server has no WebSocket route): an upgrade request is answered as the
  plain HTTP request it also is (a 404 in OpenAI's shape for an unknown path), not with
  uvicorn's plain-text 403;
- on SIGINT/SIGTERM, every answer in flight is ended cleanly (an error event and [DONE]
  for streams, a 503 for the rest) before uvicorn's graceful shutdown waits for them, and
  the signal is reported to the caller instead of being re-raised inside uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable, Generator
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .admission import RETRY_AFTER_SECONDS
from .errors import error_body, log
from .settings import ServerSettings

GRACEFUL_SHUTDOWN_SECONDS = 5  # backstop: answers in flight are ended at once anyway
MAX_HEADER_BYTES = 16 * 1024  # h11's default; larger request heads get a 400
# After answering a request we will not read (refused, late, not HTTP), keep reading and
# dropping what the client still sends for this long before closing: closing with unread
# bytes makes the kernel reset the connection, and the client then never sees the answer.
LINGER_SECONDS = 2.0


def _raw_response(status: int, reason: str, body: dict[str, Any], extra: str = "") -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + payload


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a header deadline, a connection cap and JSON errors."""

    read_timeout: float = 30.0
    max_connections: int = 0  # 0: no cap

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._lingering = False
        self._head_bytes = 0  # of the request head being read
        if self.max_connections and len(self.connections) > self.max_connections:
            log.warning("refused a connection: %d open", len(self.connections) - 1)
            body = error_body(
                503,
                f"too many open connections (at most {self.max_connections}); retry later",
                code="too_many_connections",
            )
            extra = f"retry-after: {RETRY_AFTER_SECONDS}\r\n"
            self._reply_and_close(_raw_response(503, "Service Unavailable", body, extra))
            return
        self._arm()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.read_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        body = error_body(
            408,
            f"the request headers did not arrive within {self.read_timeout:g} s",
            code="request_timeout",
        )
        self._reply_and_close(_raw_response(408, "Request Timeout", body))

    def _reply_and_close(self, data: bytes) -> None:
        self._disarm()
        self._lingering = True
        self.transport.write(data)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is whole; what comes in is dropped
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        if self.conn.their_state is h11.IDLE:
            self._arm()  # a new request has begun: its head must arrive in time
            if self._head_too_large(data):
                self.send_400_response("request head too large")
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()
            self._head_bytes = 0

    def _head_too_large(self, data: bytes) -> bool:
        """h11 limits only a head still incomplete: one that arrives whole in a single read
        (60 KB in one write) would pass. Count the head's bytes here, however they come."""
        end = data.find(b"\r\n\r\n")
        self._head_bytes += len(data) if end < 0 else end + 4
        too_large = self._head_bytes > MAX_HEADER_BYTES
        if end >= 0:
            self._head_bytes = 0
        return too_large

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _unsupported_upgrade_warning(self) -> None:
        """uvicorn warns at every upgrade request it will not upgrade: a log line anyone can
        make the server write. The request is answered as plain HTTP all the same."""

    def send_400_response(self, msg: str) -> None:
        body = error_body(
            400,
            f"the request is not valid HTTP/1.1, or its headers are larger than "
            f"{MAX_HEADER_BYTES} bytes",
            code="invalid_http_request",
        )
        self._reply_and_close(_raw_response(400, "Bad Request", body))


def protocol_class(settings: ServerSettings) -> type[H11Protocol]:
    """The protocol for uvicorn's `http=`: _Protocol with this server's limits."""
    return type(
        "OvchatProtocol",
        (_Protocol,),
        {"read_timeout": settings.read_timeout, "max_connections": settings.max_connections},
    )


def uvicorn_config(app: Any, settings: ServerSettings, **kw: Any) -> uvicorn.Config:
    kw.setdefault("log_level", "warning")
    return uvicorn.Config(
        app,
        http=protocol_class(settings),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **kw,
    )


class Server(uvicorn.Server):
    """uvicorn's server; `on_stop` ends the answers in flight before uvicorn waits for them.

    The signal that stopped it is kept in `signal` (uvicorn would re-raise it on the way out,
    which for SIGTERM kills the process before the caller can close the engine).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        on_stop: Callable[[], None],
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(config)
        self._on_stop = on_stop
        self._on_ready = on_ready
        self.signal: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        try:
            before = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        except ValueError:  # not the main thread: signals are not ours to take
            yield
            return
        try:
            yield
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.signal is None:
            self.signal = sig
        super().handle_exit(sig, frame)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()

    async def shutdown(self, sockets: Any = None) -> None:
        try:
            self._on_stop()
        except Exception:  # never let it keep the server from stopping
            log.exception("ending the answers in flight failed")
        await super().shutdown(sockets)
