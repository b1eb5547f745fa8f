"""The values that flow out of the engine: Chunks while an answer streams, a Completion at
the end, and the engine's occupancy."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import EngineError

FinishReason = Literal["stop", "length", "cancelled"]
Message = Mapping[str, Any]
Messages = Sequence[Message]


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed answer, with the stats so far.

    `ttft` and `tokens_per_second` are seconds and decode tokens/s (after the first token);
    `finish_reason` is set on the last chunk only.
    """

    text: str
    prompt_tokens: int
    generated_tokens: int
    ttft: float | None = None
    tokens_per_second: float | None = None
    finish_reason: FinishReason | None = None


@dataclass(frozen=True)
class Completion:
    """A whole answer: its text and the final stats."""

    text: str
    prompt_tokens: int
    generated_tokens: int
    ttft: float | None
    tokens_per_second: float | None
    finish_reason: FinishReason
    total_seconds: float = 0.0

    @classmethod
    def collect(
        cls, chunks: Iterable[Chunk], on_text: Callable[[str], None] | None = None
    ) -> Completion:
        """Consume a chunk stream into one Completion (timed from the first pull)."""
        t0 = time.perf_counter()
        parts: list[str] = []
        last: Chunk | None = None
        for c in chunks:
            if c.text:
                parts.append(c.text)
                if on_text:
                    on_text(c.text)
            last = c
        if last is None:
            raise EngineError("the engine produced no answer")
        return cls.of(last, "".join(parts), time.perf_counter() - t0)

    @classmethod
    def of(cls, last: Chunk, text: str, total_seconds: float = 0.0) -> Completion:
        """The Completion whose final chunk is `last` and whose whole text is `text`."""
        return cls(
            text=text,
            prompt_tokens=last.prompt_tokens,
            generated_tokens=last.generated_tokens,
            ttft=last.ttft,
            tokens_per_second=last.tokens_per_second,
            finish_reason=last.finish_reason or "cancelled",
            total_seconds=total_seconds,
        )


@dataclass(frozen=True)
class EngineStatus:
    """What the engine holds now: requests decoding, submitted-not-yet-added, and the
    KV-cache share in use after the last step (a ratio in [0, 1]; prefix caching keeps
    freed blocks cached)."""

    active: int
    pending: int
    kv_cache_usage: float
    kv_cache_bytes: int = 0  # the pool's size as genai allocated it (0 before the first step)
