"""From generated token ids to Chunks: counting, incremental detokenizing, and the channel
between the thread that generates and the consumer that reads.

The generating thread (LLMPipeline's worker, or the batching step loop) writes token ids
(and, per answer of a request with n > 1, its index and the tokens' logprobs) into a
`TokenCounter`; text comes out through a `Sink` as ("text", (index, str, logprobs)) events
and exactly one ("end", None); the request's fate (an error, a length cut) is kept in its
typed `RequestState`. `chunk()` and `finals()` turn those into the Chunks consumers see.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .types import KV_CACHE_FULL, Chunk, FinishReason, TokenLogprob

Event = tuple[Literal["text", "end"], Any]


class Sink(Protocol):
    """Where the generating thread puts ("text", ...) and ("end", None): a queue.Queue, or a
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
    length_cut: set[int] = field(default_factory=set)  # answers the engine stopped at the limit
    ended: set[int] = field(default_factory=set)  # answers the engine ended itself (stop, length)
    memory_cut: bool = False  # the engine dropped the request: its KV-cache pool ran out
    # a vision model's request, from genai's metrics once it ended: the prompt's tokens with
    # the image tokens genai put in, and the seconds spent encoding the images
    prompt_tokens: int | None = None
    image_seconds: float | None = None


class _Answer:
    """One of a request's answers: its incremental text and the logprobs not yet sent."""

    def __init__(self, owner: TokenCounter, index: int) -> None:
        import openvino_genai as ov_genai

        self.owner = owner
        self.index = index
        self.tokens = 0
        self.pending: list[TokenLogprob] = []
        self.text = ov_genai.TextStreamer(owner.tokenizer, self._on_text)
        self.ids: list[int] = []
        self.sent = 0  # characters sent so far
        self._bytes: _ReplacingText | None = None  # set once genai's text failed

    def write(self, toks: list[int]) -> None:
        self.ids.extend(toks)
        if self._bytes is None:
            try:
                self.text.write(toks)
                return
            except UnicodeDecodeError:  # see _ReplacingText
                self._bytes = _ReplacingText(self.owner.tokenizer, skip=self.sent)
                toks = self.ids
        self._send(self._bytes.feed(toks))

    def end(self) -> None:
        if self._bytes is None:
            try:
                self.text.end()
                return
            except UnicodeDecodeError:
                self._bytes = _ReplacingText(self.owner.tokenizer, skip=self.sent)
                self._send(self._bytes.feed(self.ids))
        self._send(self._bytes.flush())

    def _send(self, text: str) -> None:
        if text:
            self.sent += len(text)
            self.owner.sink.put(("text", (self.index, text, self.take())))

    def _on_text(self, text: str) -> Any:
        self._send(text)
        return self.owner.running

    def take(self) -> tuple[TokenLogprob, ...]:
        out, self.pending = tuple(self.pending), []
        return out


class _ReplacingText:
    """An answer's text from its tokens' bytes, invalid UTF-8 shown as U+FFFD.

    Written by hand because genai's TextStreamer hands its text to Python as str, and bytes
    that its detokenizer lets through but Python's UTF-8 decoder refuses (e.g. F4 90..BF:
    past U+10FFFF) raise inside it, which would end the answer with an error. Used only from
    that point on; `skip` characters (already sent by genai's streamer) are not sent again.
    """

    def __init__(self, tokenizer: Any, skip: int) -> None:
        import codecs

        self.vocab = TokenBytes(tokenizer)
        ids = (tokenizer.get_bos_token_id(), tokenizer.get_eos_token_id())
        self.special = {*ids, tokenizer.get_pad_token_id()}
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.skip = skip

    def feed(self, ids: Sequence[int]) -> str:
        raw = b"".join(self.vocab.raw(t) for t in ids if t not in self.special)
        return self._cut(self.decoder.decode(raw))

    def flush(self) -> str:
        return self._cut(self.decoder.decode(b"", final=True))

    def _cut(self, text: str) -> str:
        n = min(self.skip, len(text))
        self.skip -= n
        return text[n:]


class TokenCounter:
    """Counts tokens and turns them into text with genai's own incremental TextStreamer, one
    per answer (n > 1 answers share a request), with each token's logprob when asked.

    Written by hand only because genai's text streamer reports text, not token counts.
    """

    def __init__(
        self, tokenizer: Any, sink: Sink, cancel: threading.Event, vocab: TokenBytes | None = None
    ) -> None:
        import openvino_genai as ov_genai

        self.tokenizer = tokenizer
        self.sink = sink
        self.cancel = cancel
        self.vocab = vocab  # set: logprobs are reported
        self.state = RequestState()
        self.tokens = 0
        self.start = time.perf_counter()
        self.first: float | None = None
        self.last = 0.0
        self._status = ov_genai.StreamingStatus
        self.running = self._status.RUNNING
        self._answers: dict[int, _Answer] = {}

    def answer(self, index: int) -> _Answer:
        if index not in self._answers:
            self._answers[index] = _Answer(self, index)
        return self._answers[index]

    def write(self, token: int | list[int], index: int = 0, logprobs: Sequence[float] = ()) -> Any:
        toks = [token] if isinstance(token, int) else list(token)
        now = time.perf_counter()
        if self.first is None and toks:
            self.first = now
        self.tokens += len(toks)
        self.last = now
        answer = self.answer(index)
        answer.tokens += len(toks)
        if self.vocab is not None:
            answer.pending.extend(
                self.vocab.entry(t, lp) for t, lp in zip(toks, logprobs, strict=False)
            )
        answer.write(toks)
        return self._status.CANCEL if self.cancel.is_set() else self.running

    def end(self) -> None:
        for answer in self._answers.values():
            answer.end()

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

    def chunk(self, n_prompt: int, payload: tuple[int, str, tuple[TokenLogprob, ...]]) -> Chunk:
        index, text, logprobs = payload
        return Chunk(text, n_prompt, self.tokens, *self.stats(), index=index, logprobs=logprobs)

    def finals(self, n_prompt: int, max_new_tokens: int, n: int = 1) -> list[Chunk]:
        """The last chunk of each answer (its finish reason), or the generating thread's
        error raised."""
        if self.state.error is not None:
            raise self.state.error
        n_prompt = self.state.prompt_tokens or n_prompt
        image_seconds = self.state.image_seconds
        out = []
        for index in range(n):
            answer = self.answer(index)
            reason: FinishReason
            detail = None
            if self.cancel.is_set():
                reason = "cancelled"
            elif index in self.state.length_cut or answer.tokens >= max_new_tokens:
                reason = "length"
            elif self.state.memory_cut and index not in self.state.ended:
                reason, detail = "length", KV_CACHE_FULL  # never a silent "stop"
            else:
                reason = "stop"
            stats = self.stats()
            lps = answer.take()
            out.append(
                Chunk("", n_prompt, self.tokens, *stats, reason, index, lps, detail, image_seconds)
            )
        return out


class TokenBytes:
    """Token id → its bytes and text, for logprobs (from genai's vocabulary, built once)."""

    def __init__(self, tokenizer: Any) -> None:
        self._bytes = {i: b for b, i in tokenizer.get_vocab().items()}

    def raw(self, token: int) -> bytes:
        return self._bytes.get(token, b"")

    def entry(self, token: int, logprob: float) -> TokenLogprob:
        raw = self.raw(token)
        # A token may hold part of a character: its bytes escaped, as OpenAI shows them.
        text = raw.decode("utf-8", errors="backslashreplace")
        return TokenLogprob(int(token), text, tuple(raw), float(logprob))


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
