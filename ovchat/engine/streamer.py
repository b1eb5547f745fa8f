"""From generated token ids to Chunks: counting, incremental detokenizing, and the channel
between the thread that generates and the consumer that reads.

The generating thread (LLMPipeline's worker, or the batching step loop) writes token ids
into a `TokenCounter`; text comes out through a `Sink` as ("text", str) events and exactly
one ("end", None); the request's fate (an error, a length cut) is kept in its typed
`RequestState`. `chunk()` and `final()` turn those into the Chunks consumers see.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .types import Chunk, FinishReason

Event = tuple[Literal["text", "end"], Any]


class Sink(Protocol):
    """Where the generating thread puts ("text", str) and ("end", None): a queue.Queue, or a
    loop (LoopSink)."""

    def put(self, item: Event) -> None: ...


class LoopSink:
    """Puts into an asyncio.Queue from any thread (the step thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, aq: asyncio.Queue[Any]) -> None:
        self.loop = loop
        self.aq = aq

    def put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self.loop.call_soon_threadsafe(self.aq.put_nowait, item)


@dataclass
class RequestState:
    """How a request ended, as the generating thread saw it (read after the "end" event)."""

    error: BaseException | None = None
    length_cut: bool = False  # the engine stopped it at max_new_tokens


class TokenCounter:
    """Counts tokens and turns them into text with genai's own incremental TextStreamer.

    Written by hand only because genai's text streamer reports text, not token counts.
    """

    def __init__(self, tokenizer: Any, sink: Sink, cancel: threading.Event) -> None:
        import openvino_genai as ov_genai

        self.sink = sink
        self.cancel = cancel
        self.state = RequestState()
        self.tokens = 0
        self.start = time.perf_counter()
        self.first: float | None = None
        self.last = 0.0
        self._status = ov_genai.StreamingStatus
        self._text = ov_genai.TextStreamer(tokenizer, self._on_text)

    def _on_text(self, text: str) -> Any:
        if text:
            self.sink.put(("text", text))
        return self._status.RUNNING

    def write(self, token: int | list[int]) -> Any:
        toks = [token] if isinstance(token, int) else list(token)
        now = time.perf_counter()
        if self.first is None and toks:
            self.first = now
        self.tokens += len(toks)
        self.last = now
        self._text.write(toks)
        return self._status.CANCEL if self.cancel.is_set() else self._status.RUNNING

    def end(self) -> None:
        self._text.end()

    def finish(self, error: BaseException | None = None) -> None:
        """The one "end" event of this request (after recording an error, if any)."""
        if error is not None:
            self.state.error = error
        self.sink.put(("end", None))

    # -- chunks ----------------------------------------------------------------------------
    def stats(self) -> tuple[float | None, float | None]:
        ttft = self.first - self.start if self.first is not None else None
        tps = None
        if self.first is not None and self.tokens > 1 and self.last > self.first:
            tps = (self.tokens - 1) / (self.last - self.first)
        return ttft, tps

    def chunk(self, n_prompt: int, text: str) -> Chunk:
        return Chunk(text, n_prompt, self.tokens, *self.stats())

    def final(self, n_prompt: int, max_new_tokens: int) -> Chunk:
        """The last chunk (finish reason), or the generating thread's error raised."""
        if self.state.error is not None:
            raise self.state.error
        reason: FinishReason
        if self.cancel.is_set():
            reason = "cancelled"
        elif self.state.length_cut or self.tokens >= max_new_tokens:
            reason = "length"
        else:
            reason = "stop"
        return Chunk("", n_prompt, self.tokens, *self.stats(), reason)


@functools.cache
def streamer_class() -> type:
    """LLMPipeline wants a StreamerBase; this forwards to a TokenCounter (class made once)."""
    import openvino_genai as ov_genai

    class _Adapter(ov_genai.StreamerBase):
        def __init__(self, owner: TokenCounter) -> None:
            super().__init__()
            self.owner = owner

        def write(self, token: Any) -> Any:
            return self.owner.write(token)

        def end(self) -> None:
            self.owner.end()

    return _Adapter
