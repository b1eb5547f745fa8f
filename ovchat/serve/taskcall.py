"""One call of a task model (embed, rerank, transcribe) from a route: it waits for a slot as
a chat request does (the same queue bound and per-client fairness), runs in a worker thread
(the pipeline call blocks), and its OptionError becomes the route's 400."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from ..errors import OptionError
from .admission import CLIENT_GONE, ClientGone
from .errors import APIError
from .state import ServerState

T = TypeVar("T")


async def in_slot(
    server: ServerState, request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """`fn(*args, **kwargs)` in a thread while holding one of the server's slots."""
    try:
        await server.slots.acquire(request)
    except ClientGone:
        request.scope["ovchat_outcome"] = CLIENT_GONE
        raise APIError(400, "client disconnected") from None
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except OptionError as e:
        raise APIError.from_option(e) from e
    finally:
        await server.slots.release(request)
