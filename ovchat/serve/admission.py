"""Bounded admission: `max_running` requests generate together, `max_waiting` more queue
(FIFO) for a slot, and the next one gets a 429 at once — never an unbounded backlog."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from fastapi import Request

from .errors import APIError
from .metrics import Metrics

DISCONNECT_POLL_SECONDS = 0.25  # how often a queued or non-streamed request checks its client
CLIENT_GONE = "499"  # nginx's "client closed request", for the metrics
RETRY_AFTER_SECONDS = 1  # what a 429 or a 503 tells the client to wait before retrying


def busy(status: int, message: str, code: str) -> APIError:
    """A 429 or 503 that says when to come back (OpenAI's clients honour Retry-After)."""
    return APIError(status, message, code=code, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def shutting_down() -> APIError:
    return busy(503, "the server is shutting down; retry later", "server_shutting_down")


class ClientGone(Exception):
    """The client disconnected while its request was queued or generating."""


class Slots:
    """At most `max_running` generations; `max_waiting` more wait in FIFO order; then 429."""

    def __init__(
        self,
        max_running: int,
        max_waiting: int,
        metrics: Metrics,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.running = 0
        self.waiting = 0
        self._metrics = metrics
        self._stopping = stopping  # the server is shutting down: admit nobody
        self._cond: asyncio.Condition | None = None  # made in the server's event loop

    def _update(self) -> None:
        self._metrics.running.set(self.running)
        self._metrics.waiting.set(self.waiting)

    async def acquire(self, request: Request) -> None:
        if self._cond is None:
            self._cond = asyncio.Condition()
        if self._stopping():
            raise shutting_down()
        if self.running < self.max_running and self.waiting == 0:
            self.running += 1
            self._update()
            return
        if self.waiting >= self.max_waiting:
            raise busy(
                429,
                f"the server is busy ({self.running} requests running, {self.waiting} "
                "waiting); retry later",
                "server_busy",
            )
        self.waiting += 1
        self._update()
        try:
            async with self._cond:
                while self.running >= self.max_running:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), DISCONNECT_POLL_SECONDS)
                        continue
                    if await request.is_disconnected():
                        raise ClientGone()
                    if self._stopping():
                        raise shutting_down()
                self.running += 1
        finally:
            self.waiting -= 1
            self._update()

    async def release(self) -> None:
        self.running -= 1
        self._update()
        if self._cond is not None:
            async with self._cond:
                self._cond.notify()
