"""Admission that one client cannot monopolise: a few slots beyond `max_running` are kept
for clients that have nothing running.

Without it, a client that keeps 16 long requests in flight holds every slot, and another
client's single request waits in the queue until one of them has finished — its whole
prefill and answer (benchmarks/server_load.py measured a lone client's time to first token
going from ~2 s to ~100 s under such a flood). With it, that request is admitted at once on
a reserved slot. Inside the engine, the step loop lets a short prompt go before long ones
already being prefilled; long prompts of different clients are still prefilled in arrival
order (docs/server-load.md: what was measured).

A client is the request's OpenAI `user` field when it sends one, else its address. The
engine is sized for `max_running + FAIR_RESERVE` sequences (settings.py).
"""

from __future__ import annotations

import collections

from fastapi import Request

from .admission import Slots, shutting_down

FAIR_RESERVE = 2  # slots beyond max_running, for clients with nothing running
CLIENT_KEY = "ovchat_client"  # the request's client, in its ASGI scope


def client_of(request: Request) -> str:
    if CLIENT_KEY not in request.scope:
        request.scope[CLIENT_KEY] = request.client.host if request.client else ""
    return str(request.scope[CLIENT_KEY])


def name_client(request: Request, user: str | None) -> None:
    """The client is the body's `user` (OpenAI's end-user id), when given."""
    if user:
        request.scope[CLIENT_KEY] = "user:" + user


class FairSlots(Slots):
    """Slots, plus FAIR_RESERVE more for a request whose client has nothing running."""

    reserve = FAIR_RESERVE

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.held: collections.Counter[str] = collections.Counter()

    async def acquire(self, request: Request) -> None:
        client = client_of(request)
        full = self.running >= self.max_running
        if full and self.held[client] == 0 and self.running < self.max_running + self.reserve:
            if self._stopping():
                raise shutting_down()
            self.running += 1  # ahead of the queue: this client had no turn at all
            self._update()
        else:
            await super().acquire(request)
        self.held[client] += 1
        request.scope["ovchat_slot"] = client

    async def release(self, request: Request | None = None) -> None:
        client = None if request is None else request.scope.pop("ovchat_slot", None)
        if client is not None:
            self.held[client] -= 1
            if self.held[client] <= 0:
                del self.held[client]
        await super().release()
