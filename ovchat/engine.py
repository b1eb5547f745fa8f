"""The engine: an exported model dir loaded on a device, and one streaming primitive.

`Engine.stream()` yields `Chunk`s: text pieces with running stats, the last one carrying a
finish reason. Every front end (generate, chat, serve, bench) consumes that generator.
Nothing here knows about terminals or HTTP.

Two schedulers sit behind the same primitive:
- "pipeline": openvino-genai's LLMPipeline, one request at a time (lowest latency);
- "batching": openvino-genai's ContinuousBatchingPipeline with prefix caching, for many
  concurrent requests (the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import math
import queue
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from .batching import StepLoop
from .errors import (
    ContextLengthError,
    DeviceError,
    InvalidModelError,
    OptionError,
    OvchatError,
    reason,
)
from .paths import compiled_cache_dir

_RNG = random.SystemRandom()
DEFAULT_DEVICE = "CPU"
DEFAULT_MAX_NEW_TOKENS = 1024  # as in the seed
DEFAULT_CONTEXT_LENGTH = 2048  # when the config names none
# The seed's properties, with a model cache so the second load skips compilation.
DEFAULT_PROPERTIES: dict[str, str] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
# LLMPipeline: genai's default paged-attention backend recompiles and rewrites its 100 MB
# cache blob on every load; the SDPA backend is served from CACHE_DIR (second load ~3x faster)
# and gives the same tokens. The batching backend needs paged attention, so it gets no
# default CACHE_DIR (it would only rewrite the blob on every start).
PIPELINE_PROPERTIES: dict[str, str] = {"ATTENTION_BACKEND": "SDPA"}
# Conversations resend their history every turn: paged attention reuses the KV cache of a
# repeated prefix (a 1,000-token history: ~30 CPU-ms instead of ~1 s), worth its slower load.
# `ovchat chat` and ovchat.load() use it; one-shot `generate` keeps SDPA's fast load.
CONVERSATION_PROPERTIES: dict[str, str] = {"ATTENTION_BACKEND": "PA"}
META_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")
REQUIRED_FILES = (
    "openvino_model.xml",
    "openvino_model.bin",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
)
DEFAULT_KV_CACHE_GB = 2.0  # batching: KV-cache pool shared by all requests
DEFAULT_MAX_NUM_SEQS = 32  # batching: sequences decoded in one step

Messages = Sequence[Mapping[str, str]]
FinishReason = Literal["stop", "length", "cancelled"]
Backend = Literal["pipeline", "batching"]


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling and stopping. `None` means the model's own generation_config default."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # decode exactly max_new_tokens (benchmarks)

    def validate(self) -> GenerationOptions:
        if self.max_new_tokens < 1:
            raise OptionError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature is not None and not 0.0 <= self.temperature <= 100.0:
            raise OptionError(f"temperature must be between 0 and 100, got {self.temperature}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise OptionError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise OptionError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            raise OptionError(f"repetition_penalty must be positive, got {self.repetition_penalty}")
        if self.seed is not None and self.seed < 0:
            raise OptionError(f"seed must be non-negative, got {self.seed}")
        if any(not s for s in self.stop):
            raise OptionError("stop strings must not be empty")
        return self


class Tokens(tuple[int, ...]):
    """A prompt already tokenized (e.g. by a caller that checked its length): sent as is."""


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
            raise OvchatError("the engine produced no answer")
        return cls(
            text="".join(parts),
            prompt_tokens=last.prompt_tokens,
            generated_tokens=last.generated_tokens,
            ttft=last.ttft,
            tokens_per_second=last.tokens_per_second,
            finish_reason=last.finish_reason or "cancelled",
            total_seconds=time.perf_counter() - t0,
        )


@dataclass(frozen=True)
class EngineLoad:
    """What the batching step loop holds: requests decoding, submitted-not-yet-added, and
    the KV-cache share in use after the last step (prefix caching keeps freed blocks cached)."""

    active: int
    pending: int
    kv_cache_usage: float


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    context_length: int
    manifest: dict[str, Any] = field(default_factory=dict)


def check_model_dir(path: str | Path) -> Path:
    """Raise InvalidModelError unless `path` holds an exported model; return it resolved."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InvalidModelError(f"model directory {p} does not exist", "check the path")
    if not p.is_dir():
        raise InvalidModelError(
            f"{p} is not a directory", "export it first: ovchat export MODEL OUTPUT_DIR"
        )
    missing = [f for f in REQUIRED_FILES if not (p / f).is_file()]
    if missing:
        raise InvalidModelError(
            f"{p} is not an exported model (missing {', '.join(missing)})",
            _reexport_hint(p) if (p / "ovchat.json").is_file() else "export a model into it first",
        )
    return p.resolve()


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidModelError(f"{path} is corrupted: {e}", _reexport_hint(path.parent)) from e
    if not isinstance(data, dict):
        raise InvalidModelError(f"{path} is not a JSON object", _reexport_hint(path.parent))
    return data


def _reexport_hint(path: Path) -> str:
    """A command that rebuilds `path`: from its manifest's source when it has one."""
    from .paths import models_dir

    if models_dir() in path.parents:
        return f"delete {path}; ovchat prepares it again on the next run"
    source = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        source = json.loads((path / "ovchat.json").read_text())["source"]["model"]
    return f"re-export it: ovchat export {source or 'MODEL'} {path} --force"


def read_model_info(path: Path) -> ModelInfo:
    manifest = _read_json_object(path / "ovchat.json") if (path / "ovchat.json").is_file() else {}
    ctx = DEFAULT_CONTEXT_LENGTH
    if (path / "config.json").is_file():
        cfg = _read_json_object(path / "config.json")
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = cfg.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                if value < 2:
                    raise InvalidModelError(
                        f"{path / 'config.json'} gives a context of {value} tokens",
                        _reexport_hint(path),
                    )
                ctx = value
                break
    name = str(manifest.get("name") or path.name)
    return ModelInfo(path=path, name=name, context_length=ctx, manifest=manifest)


def available_devices() -> list[str]:
    import openvino as ov

    return list(ov.Core().available_devices)


def check_device(device: str) -> str:
    """Accept CPU, GPU, GPU.0, NPU, AUTO, ... only when present; else name those that are."""
    device = device.strip().upper()
    if not device:
        raise OptionError("device must not be empty")
    if device.split(":")[0] in META_DEVICES:
        return device
    present = available_devices()
    if device in present or any(d.split(".")[0] == device for d in present):
        return device
    raise DeviceError(
        f"device {device!r} is not present on this machine",
        f"available: {', '.join(present) or 'none'}; use --device "
        + (present[0] if present else "CPU"),
    )


def _ov_tensor(ids: Sequence[int]) -> Any:
    import numpy as np
    import openvino as ov

    return ov.Tensor(np.asarray([list(ids)], dtype=np.int64))


class Engine:
    """A model loaded once; `stream()` may be called many times (concurrently with batching)."""

    def __init__(
        self,
        model_dir: str | Path,
        device: str = DEFAULT_DEVICE,
        properties: Mapping[str, Any] | None = None,
        backend: Backend = "pipeline",
        kv_cache_gb: float = DEFAULT_KV_CACHE_GB,
        max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    ) -> None:
        import openvino_genai as ov_genai

        self.path = check_model_dir(model_dir)
        self.info = read_model_info(self.path)
        self.device = check_device(device)
        self.backend: Backend = backend
        props: dict[str, Any] = dict(DEFAULT_PROPERTIES)
        if backend == "pipeline":
            props.update(PIPELINE_PROPERTIES)
        props.update({k: v for k, v in (properties or {}).items()})
        if "CACHE_DIR" not in props and str(props.get("ATTENTION_BACKEND")).upper() == "SDPA":
            props["CACHE_DIR"] = str(compiled_cache_dir())  # only SDPA is served from it
        if props.get("CACHE_DIR") in ("", None):
            props.pop("CACHE_DIR", None)  # the seed's CACHE_DIR="" means no cache
        else:
            Path(props["CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
        self.properties = props
        t0 = time.perf_counter()
        try:
            if backend == "pipeline":
                self._pipe: Any = ov_genai.LLMPipeline(str(self.path), self.device, **props)
                self.tokenizer = self._pipe.get_tokenizer()
                self._default_config = self._pipe.get_generation_config()
            elif backend == "batching":
                sched = ov_genai.SchedulerConfig()
                sched.enable_prefix_caching = True
                sched.cache_size = max(1, math.ceil(kv_cache_gb))  # genai takes whole GB
                sched.max_num_seqs = max_num_seqs
                sched.dynamic_split_fuse = True
                self._pipe = ov_genai.ContinuousBatchingPipeline(
                    str(self.path), sched, self.device, props
                )
                self.tokenizer = self._pipe.get_tokenizer()
                self._default_config = self._pipe.get_config()
            else:
                raise OptionError(f"unknown backend {backend!r}", "use 'pipeline' or 'batching'")
        except RuntimeError as e:
            why = reason(e)
            if "property" in why.lower():
                raise OptionError(
                    f"OpenVINO refused a property: {why}", "check the -p KEY=VALUE options"
                ) from e
            raise InvalidModelError(
                f"OpenVINO could not load {self.path}: {why}", _reexport_hint(self.path)
            ) from e
        self.load_seconds = time.perf_counter() - t0
        self._lock = threading.Lock()  # LLMPipeline runs one request at a time
        self._ids = itertools.count()
        self._loop: StepLoop | None = StepLoop(self._pipe) if backend == "batching" else None

    # -- prompts ---------------------------------------------------------------------------
    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", ""))

    def render(self, messages: Messages) -> str:
        """The model's own chat template applied to `messages`, ready for the answer."""
        for m in messages:
            if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
                raise OptionError("each message needs a 'role' and a 'content'")
            _check_text(str(m["content"]))
        if not self.has_chat_template:
            # A base model (no template): plain "role: content" lines, the answer after.
            lines = [f"{m['role']}: {m['content']}" for m in messages]
            return "\n".join([*lines, "assistant:"])
        try:
            return str(self.tokenizer.apply_chat_template([dict(m) for m in messages], True))
        except (RuntimeError, TypeError) as e:
            raise OptionError(f"the chat template refused these messages: {reason(e)}") from e

    def encode(self, text: str) -> list[int]:
        _check_text(text)
        try:
            ids = self.tokenizer.encode(text, add_special_tokens=False).input_ids.data
        except (RuntimeError, TypeError) as e:
            raise OptionError(f"the prompt cannot be tokenized: {reason(e)}") from e
        return [int(i) for i in ids[0]]

    def prompt_ids(self, prompt: str | Messages | Tokens) -> list[int]:
        if isinstance(prompt, Tokens):
            return list(prompt)
        text = prompt if isinstance(prompt, str) else self.render(prompt)
        return self.encode(text)

    # -- the primitive ---------------------------------------------------------------------
    def stream(
        self,
        prompt: str | Messages | Tokens,
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Chunk]:
        """Stream an answer. A str is sent as is (raw); a message list goes through the template.

        Closing the generator early (or setting `cancel`) stops generation and frees its memory.
        """
        options, ids, config = self._prepare(prompt, options)
        cancel = cancel or threading.Event()
        if self.backend == "batching":
            yield from self._stream_batching(ids, config, options, cancel)
        else:
            yield from self._stream_pipeline(ids, config, options, cancel)

    async def astream(
        self,
        prompt: str | Messages | Tokens,
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> AsyncIterator[Chunk]:
        """`stream()` for asyncio (the server): the same chunks, awaited.

        With batching, the step thread posts straight into the running event loop: no thread
        per request. That matters because genai's `step()` holds the GIL for the whole step,
        so every hop between threads can wait up to one step. The pipeline backend runs
        `stream()` in a worker thread. Leaving early (or `cancel`) stops generation.
        """
        cancel = cancel or threading.Event()
        loop = asyncio.get_running_loop()
        aq: asyncio.Queue[Any] = asyncio.Queue()
        if self.backend != "batching":
            try:
                async for chunk in _threaded(self.stream(prompt, options, cancel), loop, aq):
                    yield chunk
            finally:
                cancel.set()  # the worker's stream() sees it at its next token
            return
        options, ids, config = self._prepare(prompt, options)
        counter, box, steps = self._submit(ids, config, cancel, _LoopSink(loop, aq))
        try:
            while True:
                kind, payload = await aq.get()
                if kind == "end":
                    break
                if kind == "text":
                    yield _chunk(counter, len(ids), payload)
            yield _final(counter, len(ids), options, cancel, box)
        finally:
            cancel.set()
            steps.wake()

    def _prepare(
        self, prompt: str | Messages | Tokens, options: GenerationOptions | None
    ) -> tuple[GenerationOptions, list[int], Any]:
        """Validate, tokenize, check the window, clamp the budget, build genai's config."""
        options = (options or GenerationOptions()).validate()
        ids = self.prompt_ids(prompt)
        n_prompt = len(ids)
        if n_prompt == 0:
            raise OptionError("the prompt is empty", "give at least one token of prompt")
        room = self.info.context_length - n_prompt
        if room < 1:
            raise ContextLengthError(
                f"the prompt is {n_prompt} tokens; the model's context window is "
                f"{self.info.context_length}",
                "shorten the prompt or the conversation",
            )
        if options.max_new_tokens > room:
            options = replace(options, max_new_tokens=room)  # answer until the window is full
        return options, ids, self._config(options)

    def generate(
        self, prompt: str | Messages, options: GenerationOptions | None = None
    ) -> Completion:
        """The whole answer at once (consumes `stream`)."""
        return Completion.collect(self.stream(prompt, options))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.stop()
            self._loop = None

    def load(self) -> EngineLoad:
        """Requests inside the engine now (batching; the pipeline backend reports its lock)."""
        if self._loop is not None:
            return EngineLoad(*self._loop.load())
        return EngineLoad(active=int(self._lock.locked()), pending=0, kv_cache_usage=0.0)

    # -- internals -------------------------------------------------------------------------
    def _config(self, o: GenerationOptions) -> Any:
        # A fresh copy of the model's own generation_config each time.
        cfg = (
            self._pipe.get_generation_config()
            if self.backend == "pipeline"
            else self._pipe.get_config()
        )
        cfg.max_new_tokens = o.max_new_tokens
        cfg.apply_chat_template = False  # the prompt is already rendered
        if o.temperature is not None:
            cfg.temperature = o.temperature
            cfg.do_sample = o.temperature > 0
        if o.top_p is not None:
            cfg.top_p = o.top_p
        if o.top_k is not None:
            cfg.top_k = o.top_k if o.top_k > 0 else 2**31 - 1
        if o.repetition_penalty is not None:
            cfg.repetition_penalty = o.repetition_penalty
        if o.seed is not None:
            cfg.rng_seed = o.seed
        elif cfg.do_sample:
            # genai's default seed is fixed: without this every "random" answer is the same
            cfg.rng_seed = _RNG.randrange(2**31)
        if o.ignore_eos:
            cfg.ignore_eos = True
        if o.stop:
            cfg.stop_strings = set(o.stop)
            cfg.include_stop_str_in_output = False
        return cfg

    def _stream_pipeline(
        self, ids: list[int], config: Any, options: GenerationOptions, cancel: threading.Event
    ) -> Iterator[Chunk]:
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        counter = _Counter(self.tokenizer, q, cancel)
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                with self._lock:
                    counter.start = time.perf_counter()
                    self._pipe.generate(_tokenized(ids), config, _adapter_class()(counter))
            except BaseException as e:
                box["error"] = e
            finally:
                q.put(("end", None))

        thread = threading.Thread(target=work, name="ovchat-generate", daemon=True)
        thread.start()
        try:
            yield from _drain(q, counter, len(ids), options, cancel, box)
        finally:
            cancel.set()
            thread.join()

    def _stream_batching(
        self, ids: list[int], config: Any, options: GenerationOptions, cancel: threading.Event
    ) -> Iterator[Chunk]:
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        counter, box, loop = self._submit(ids, config, cancel, q)
        try:
            yield from _drain(q, counter, len(ids), options, cancel, box)
        finally:
            cancel.set()
            loop.wake()

    def _submit(
        self, ids: list[int], config: Any, cancel: threading.Event, sink: _Sink
    ) -> tuple[_Counter, dict[str, Any], StepLoop]:
        """Hand a request to the step loop; its text and its end arrive through `sink`."""
        if self._loop is None:
            raise OvchatError("the engine is closed", "create a new Engine")
        counter = _Counter(self.tokenizer, sink, cancel)
        counter.start = time.perf_counter()
        box: dict[str, Any] = {}
        self._loop.submit(next(self._ids), _ov_tensor(ids), config, counter, sink, box)
        return counter, box, self._loop


def _check_text(text: str) -> None:
    """Text read with surrogateescape (undecodable bytes) cannot reach the tokenizer."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise OptionError("the prompt is not valid UTF-8 text", "check its encoding") from e


def _tokenized(ids: Sequence[int]) -> Any:
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    t = ov.Tensor(np.asarray([list(ids)], dtype=np.int64))
    mask = ov.Tensor(np.ones((1, len(ids)), dtype=np.int64))
    return ov_genai.TokenizedInputs(t, mask)


class _Counter:
    """Counts tokens and turns them into text with genai's own incremental TextStreamer.

    Written by hand only because genai's text streamer reports text, not token counts.
    """

    def __init__(self, tokenizer: Any, q: _Sink, cancel: threading.Event):
        import openvino_genai as ov_genai

        self.q = q
        self.cancel = cancel
        self.tokens = 0
        self.start = 0.0
        self.first: float | None = None
        self.last = 0.0
        self._status = ov_genai.StreamingStatus
        self._text = ov_genai.TextStreamer(tokenizer, self._on_text)

    def _on_text(self, text: str) -> Any:
        if text:
            self.q.put(("text", text))
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


@functools.cache
def _adapter_class() -> type:
    """LLMPipeline wants a StreamerBase; this forwards to a _Counter (class made once)."""
    import openvino_genai as ov_genai

    class _Adapter(ov_genai.StreamerBase):
        def __init__(self, owner: _Counter) -> None:
            super().__init__()
            self.owner = owner

        def write(self, token: Any) -> Any:
            return self.owner.write(token)

        def end(self) -> None:
            self.owner.end()

    return _Adapter


def _drain(
    q: queue.Queue[tuple[str, Any]],
    counter: _Counter,
    n_prompt: int,
    options: GenerationOptions,
    cancel: threading.Event,
    box: dict[str, Any],
) -> Iterator[Chunk]:
    """Turn the queue a worker fills into Chunks; the last one carries the finish reason."""
    while True:
        kind, payload = q.get()
        if kind == "text":
            yield _chunk(counter, n_prompt, payload)
        elif kind == "end":
            break
    yield _final(counter, n_prompt, options, cancel, box)


def _stats(counter: _Counter) -> tuple[float | None, float | None]:
    ttft = counter.first - counter.start if counter.first is not None else None
    tps = None
    if counter.first is not None and counter.tokens > 1 and counter.last > counter.first:
        tps = (counter.tokens - 1) / (counter.last - counter.first)
    return ttft, tps


def _chunk(counter: _Counter, n_prompt: int, text: str) -> Chunk:
    return Chunk(text, n_prompt, counter.tokens, *_stats(counter))


def _final(
    counter: _Counter,
    n_prompt: int,
    options: GenerationOptions,
    cancel: threading.Event,
    box: dict[str, Any],
) -> Chunk:
    """The last chunk (finish reason), or the worker's error raised."""
    if "error" in box:
        raise box["error"]
    if cancel.is_set():
        reason: FinishReason = "cancelled"
    elif box.get("finish") == "length" or counter.tokens >= options.max_new_tokens:
        reason = "length"
    else:
        reason = "stop"
    return Chunk("", n_prompt, counter.tokens, *_stats(counter), reason)


class _Sink(Protocol):
    """Where the step thread puts ("text", str) and ("end", None): a queue.Queue, or a loop."""

    def put(self, item: tuple[str, Any]) -> None: ...


class _LoopSink:
    """Puts into an asyncio.Queue from any thread (the step thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, aq: asyncio.Queue[Any]) -> None:
        self.loop = loop
        self.aq = aq

    def put(self, item: tuple[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self.loop.call_soon_threadsafe(self.aq.put_nowait, item)


async def _threaded(
    chunks: Iterator[Chunk], loop: asyncio.AbstractEventLoop, aq: asyncio.Queue[Any]
) -> AsyncIterator[Chunk]:
    """A blocking chunk iterator consumed in a worker thread, awaited here."""
    sink = _LoopSink(loop, aq)

    def work() -> None:
        try:
            for c in chunks:
                sink.put(("chunk", c))
        except BaseException as e:
            sink.put(("error", e))
        finally:
            sink.put(("end", None))

    thread = threading.Thread(target=work, name="ovchat-generate", daemon=True)
    thread.start()
    while True:
        kind, payload = await aq.get()
        if kind == "end":
            return
        if kind == "error":
            raise payload
        yield payload
