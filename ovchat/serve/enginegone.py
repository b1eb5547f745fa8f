"""What clients see when a chat model's engine process dies (engine/remote.py): its answers
in flight end with a 503 in OpenAI's error shape (an error event for streams), and new
requests get a 503 with Retry-After while the pool starts a new process (pool.py)."""

from __future__ import annotations

from typing import Any

from .admission import busy
from .errors import APIError


def engine_restarting(model: str) -> APIError:
    """For a request to a model whose engine process is being restarted."""
    msg = f"The model '{model}' is restarting after its engine stopped; retry shortly."
    return busy(503, msg, "model_restarting")


def engine_gone() -> APIError:
    """For an answer that was being generated when its engine process stopped."""
    msg = "The model's engine stopped during this answer; it is being restarted, retry shortly."
    return busy(503, msg, "engine_stopped")


def engine_gone_body() -> dict[str, Any]:
    return engine_gone().body()
