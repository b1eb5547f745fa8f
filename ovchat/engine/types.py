"""The values that flow out of the engine: Chunks while an answer streams, a Completion at
the end, and the engine's occupancy."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..errors import EngineError
from .toolparse import split_calls
from .tools import ToolCall

FinishReason = Literal["stop", "length", "cancelled", "tool_calls"]
KV_CACHE_FULL = "kv_cache_full"  # a Chunk's finish_detail: cut because the KV cache ran out
Message = Mapping[str, Any]
Messages = Sequence[Message]


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its id, text, raw bytes (a token may hold part of a character)
    and natural-log probability."""

    id: int
    token: str
    bytes: tuple[int, ...]
    logprob: float


@dataclass(frozen=True)
class Chunk:
    """One piece of a streamed answer, with the stats so far.

    `ttft` and `tokens_per_second` are seconds and decode tokens/s (after the first token);
    `finish_reason` is set on the last chunk only — of each answer: with n > 1 answers per
    request each chunk says which (`index`), and `generated_tokens` counts all of them.
    `logprobs` (when asked for) covers the tokens generated since the last chunk.
    `finish_detail` says why an answer was cut short of its limit (KV_CACHE_FULL: the
    engine's KV-cache pool ran out, the finish reason is then "length").
    """

    text: str
    prompt_tokens: int
    generated_tokens: int
    ttft: float | None = None
    tokens_per_second: float | None = None
    finish_reason: FinishReason | None = None
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_detail: str | None = None
    image_seconds: float | None = None  # a vision model's last chunk: encoding its images


@dataclass(frozen=True)
class Completion:
    """A whole answer: its text and the final stats (and its tool calls, when it was asked
    with tools: see `with_calls`)."""

    text: str
    prompt_tokens: int
    generated_tokens: int
    ttft: float | None
    tokens_per_second: float | None
    finish_reason: FinishReason
    total_seconds: float = 0.0
    logprobs: tuple[TokenLogprob, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()  # with tools: the calls, and `text` is the rest
    image_seconds: float | None = None  # a vision model: seconds encoding the images

    @classmethod
    def collect(
        cls, chunks: Iterable[Chunk], on_text: Callable[[str], None] | None = None
    ) -> Completion:
        """Consume a chunk stream of one answer into one Completion (timed from the first
        pull)."""
        t0 = time.perf_counter()
        parts: list[str] = []
        logprobs: list[TokenLogprob] = []
        last: Chunk | None = None
        for c in chunks:
            if c.text:
                parts.append(c.text)
                if on_text:
                    on_text(c.text)
            logprobs.extend(c.logprobs)
            last = c
        if last is None:
            raise EngineError("the engine produced no answer")
        return cls.of(last, "".join(parts), time.perf_counter() - t0, tuple(logprobs))

    @classmethod
    def of(
        cls,
        last: Chunk,
        text: str,
        total_seconds: float = 0.0,
        logprobs: tuple[TokenLogprob, ...] = (),
    ) -> Completion:
        """The Completion whose final chunk is `last` and whose whole text is `text`."""
        return cls(
            text=text,
            prompt_tokens=last.prompt_tokens,
            generated_tokens=last.generated_tokens,
            ttft=last.ttft,
            tokens_per_second=last.tokens_per_second,
            finish_reason=last.finish_reason or "cancelled",
            total_seconds=total_seconds,
            logprobs=logprobs,
            image_seconds=last.image_seconds,
        )

    def with_calls(self) -> Completion:
        """This answer with its tool calls read out of its text (tools.py's format)."""
        content, calls = split_calls(self.text)
        if not calls:
            return self
        reason: FinishReason = "length" if self.finish_reason == "length" else "tool_calls"
        return replace(self, text=content.strip(), tool_calls=tuple(calls), finish_reason=reason)


@dataclass(frozen=True)
class EngineStatus:
    """What the engine holds now: requests decoding, submitted-not-yet-added, and the
    KV-cache share in use after the last step (a ratio in [0, 1]; prefix caching keeps
    freed blocks cached)."""

    active: int
    pending: int
    kv_cache_usage: float
    kv_cache_bytes: int = 0  # the pool's size as genai allocated it (0 before the first step)
