"""The engine: an exported model dir loaded on a device, and one streaming primitive.

`Engine.stream()` yields `Chunk`s: text pieces with running stats, the last one carrying a
finish reason. Every front end (generate, chat, serve, bench) consumes that generator.
Nothing here knows about terminals or HTTP.

Two schedulers sit behind the same primitive:
- "pipeline": openvino-genai's LLMPipeline, one request at a time (lowest latency);
- "batching": openvino-genai's ContinuousBatchingPipeline with prefix caching, for many
  concurrent requests (the server), driven by the StepLoop.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import EngineError, InvalidModelError, OptionError, reason
from ..modeldir import KIND_ARTICLE, KIND_USE, Kind, check_model_dir, read_model_info
from ..options import GenerationOptions
from . import kvcache
from .device import DEFAULT_DEVICE, check_device, load_error
from .front import PlanningFront
from .planner import Plan, Planner, Prompt
from .runtime import PROMPT_LOOKUP_NGRAM, PROMPT_LOOKUP_TOKENS, Backend, runtime_properties
from .sampling import apply_options
from .steploop import StepLoop
from .streamer import LoopSink, Sink, TokenBytes, TokenCounter, streamer_class
from .structured import Constraint
from .types import Chunk, Completion, EngineStatus

# Conversations resend their history every turn: paged attention reuses the KV cache of a
# repeated prefix (a 1,000-token history: ~30 CPU-ms instead of ~1 s), worth its slower load.
# `ovchat chat` and ovchat.load() use it; one-shot `generate` keeps SDPA's fast load.
CONVERSATION_PROPERTIES: dict[str, str] = {"ATTENTION_BACKEND": "PA"}
DEFAULT_KV_CACHE_GB = 2.0  # batching: KV-cache pool shared by all requests
DEFAULT_MAX_NUM_SEQS = 32  # batching: sequences decoded in one step
# batching: tokens one engine step computes (genai's max_num_batched_tokens). A long prompt
# is prefilled in chunks of this size between other requests' decode steps; a step holds
# the GIL, so in-process this also bounds how long nothing else runs (the server runs the
# engine in a process of its own: remote.py), and it bounds how long a short prompt waits
# for its first step (benchmarks/prefill_hol.py).
DEFAULT_PREFILL_CHUNK = 128


class Engine(PlanningFront):
    """A model loaded once; `stream()` may be called many times (concurrently with batching)."""

    KIND: Kind = "chat"  # the kind of export it loads (VisionEngine: "vision")

    def __init__(
        self,
        model_dir: str | Path,
        device: str = DEFAULT_DEVICE,
        properties: Mapping[str, Any] | None = None,
        backend: Backend = "pipeline",
        kv_cache_gb: float = DEFAULT_KV_CACHE_GB,
        max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
        prefill_chunk: int = DEFAULT_PREFILL_CHUNK,
        prompt_lookup: bool = False,
    ) -> None:
        """`prompt_lookup`: genai's prompt-lookup decoding (drafts copied from the prompt,
        verified in one step; faster on answers that repeat their prompt, on the
        paged-attention path). Greedy answers are the same tokens as without it."""
        if backend not in ("pipeline", "batching"):
            raise OptionError(
                f"unknown backend {backend!r}", "use 'pipeline' or 'batching'", param="backend"
            )
        self.path = check_model_dir(model_dir)
        self.info = read_model_info(self.path)
        if self.info.kind != self.KIND:
            raise InvalidModelError(
                f"{self.info.name} is {KIND_ARTICLE[self.info.kind]} {self.info.kind} model: "
                "it does not generate text",
                f"use it with {KIND_USE[self.info.kind]}; or load a chat model",
                param="model",
            )
        self.device = check_device(device)
        self.backend: Backend = backend
        self.prompt_lookup = prompt_lookup
        self.properties = runtime_properties(
            backend, properties, self.info.manifest, self.device, prompt_lookup
        )
        self.kv_pool_tokens: int | None = None  # batching: tokens the KV-cache pool holds
        t0 = time.perf_counter()
        self._pipe = self._load(kv_cache_gb, max_num_seqs, prefill_chunk)
        self.load_seconds = time.perf_counter() - t0
        self.tokenizer = self._pipe.get_tokenizer()
        self.planner = Planner(self.tokenizer, self.info.context_length)
        self._lock = threading.Lock()  # LLMPipeline runs one request at a time
        self._ids = itertools.count()
        self._steps: StepLoop | None = (
            StepLoop(self._pipe, prefill_chunk) if backend == "batching" else None
        )
        self._vocab: TokenBytes | None = None  # built on the first request for logprobs

    def _load(self, kv_cache_gb: float, max_num_seqs: int, prefill_chunk: int) -> Any:
        import openvino_genai as ov_genai

        try:
            if self.backend == "pipeline":
                extra = {"prompt_lookup": True} if self.prompt_lookup else {}
                return ov_genai.LLMPipeline(str(self.path), self.device, **extra, **self.properties)
            sched = ov_genai.SchedulerConfig()
            sched.enable_prefix_caching = True
            sched.max_num_seqs = max_num_seqs
            # Chunked prefill: decode steps first, then at most `prefill_chunk` prompt tokens.
            sched.dynamic_split_fuse = True
            sched.max_num_batched_tokens = prefill_chunk
            self._size_kv_cache(sched, kv_cache_gb)
            props = {**self.properties, **({"prompt_lookup": True} if self.prompt_lookup else {})}
            return ov_genai.ContinuousBatchingPipeline(str(self.path), sched, self.device, props)
        except RuntimeError as e:
            raise load_error(self.path, e) from e

    def _size_kv_cache(self, sched: Any, kv_cache_gb: float) -> None:
        if not kv_cache_gb > 0:
            raise OptionError(
                f"kv_cache_gb must be positive, got {kv_cache_gb}", param="kv_cache_gb"
            )
        kvcache.configure(sched, kv_cache_gb, self.path, self.device, self.properties)
        tokens = kvcache.pool_tokens(sched, self.path, self.device, self.properties)
        self.kv_pool_tokens = tokens
        ctx = self.info.context_length
        if tokens is not None and tokens < ctx:
            # genai would never schedule a prompt the pool cannot hold: it would wait forever.
            raise OptionError(
                f"a KV cache of {kv_cache_gb:g} GB holds {tokens} tokens of this model, less "
                f"than its context window ({ctx})",
                f"give at least {math.ceil(kv_cache_gb * ctx / tokens * 100) / 100:g} GB",
                param="kv_cache_gb",
            )

    def checked(self, plan: Plan, grammar_timeout: float | None = None) -> Plan:
        """`plan` with genai's config for its options (built once, validated by genai, its
        constraint compiled first in the grammar sandbox, unless it was already)."""
        if plan.config is not None:
            return plan
        chosen = self.constraint(plan, grammar_timeout)
        return replace(plan, config=self._config(plan.options, chosen), constraint=chosen)

    # -- the primitive ---------------------------------------------------------------------
    def stream(
        self,
        prompt: Prompt | Plan,
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Chunk]:
        """Stream an answer. A str is sent as is (raw); a message list goes through the
        template; a Plan (from `plan()`) is sent as planned.

        Closing the generator early (or setting `cancel`) stops generation and frees its memory.
        """
        plan = self.checked(prompt) if isinstance(prompt, Plan) else self.plan(prompt, options)
        cancel = cancel or threading.Event()
        q: queue.Queue[Any] = queue.Queue()
        counter = self._counter(plan, q, cancel)
        stopped = self._start(plan, counter)
        try:
            while True:
                kind, payload = q.get()
                if kind == "end":
                    break
                yield counter.chunk(plan.prompt_tokens, payload)
            o = plan.options
            yield from counter.finals(plan.prompt_tokens, o.max_new_tokens, o.n)
        finally:
            cancel.set()
            stopped(True)

    async def astream(
        self,
        prompt: Prompt | Plan,
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> AsyncIterator[Chunk]:
        """`stream()` for asyncio (the server): the same chunks, awaited.

        The generating thread posts straight into the running event loop: no thread per
        request with batching. That matters because genai's `step()` holds the GIL for the
        whole step, so every hop between threads can wait up to one step. Leaving early (or
        `cancel`) stops generation.
        """
        plan = self.checked(prompt) if isinstance(prompt, Plan) else self.plan(prompt, options)
        cancel = cancel or threading.Event()
        aq: asyncio.Queue[Any] = asyncio.Queue()
        counter = self._counter(plan, LoopSink(asyncio.get_running_loop(), aq), cancel)
        stopped = self._start(plan, counter)
        try:
            while True:
                kind, payload = await aq.get()
                if kind == "end":
                    break
                yield counter.chunk(plan.prompt_tokens, payload)
            o = plan.options
            for chunk in counter.finals(plan.prompt_tokens, o.max_new_tokens, o.n):
                yield chunk
        finally:
            cancel.set()  # the generating thread sees it at its next token or step
            stopped(False)  # never block the event loop

    def generate(
        self, prompt: Prompt | Plan, options: GenerationOptions | None = None
    ) -> Completion:
        """The whole answer at once (consumes `stream`)."""
        plan = self.checked(prompt) if isinstance(prompt, Plan) else self.plan(prompt, options)
        if plan.options.n > 1:
            raise OptionError(
                "generate() gives one answer",
                "stream() gives n, each chunk with its index",
                param="n",
            )
        return Completion.collect(self.stream(plan))

    def counter(self, plan: Plan, sink: Sink, cancel: threading.Event) -> TokenCounter:
        """The TokenCounter of a checked plan whose events go to `sink` (for `begin`)."""
        return self._counter(plan, sink, cancel)

    def begin(self, plan: Plan, counter: TokenCounter) -> None:
        """Start a checked plan on the step loop; its events reach `counter`'s sink on the
        step thread (the engine process makes its chunks there with `counter.chunk` and
        `counter.finals`). Batching only."""
        if self._steps is None:
            raise EngineError("the engine is closed", "load the model again")
        vision = self._vision_inputs(plan) if self.KIND == "vision" else None
        self._steps.submit(next(self._ids), _ids_tensor(plan.ids), plan.config, counter, vision)

    def on_step(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` on the step thread after each step's tokens were handed out (and
        after requests were ended without a step): one point to send them all. Batching."""
        if self._steps is not None:
            self._steps.on_step = callback

    def wake(self) -> None:
        """A cancel event was set from outside a consumer: let the step loop see it now."""
        if self._steps is not None:
            self._steps.wake()

    def cancel_all(self) -> None:
        """Stop every answer in flight (batching; they end with finish reason "cancelled")."""
        if self._steps is not None:
            self._steps.cancel_all()

    def close(self) -> None:
        self.close_grammar()
        if self._steps is not None:
            self._steps.stop()
            self._steps = None

    def status(self) -> EngineStatus:
        """Requests inside the engine now (the pipeline backend reports its lock)."""
        if self._steps is not None:
            return self._steps.status()
        return EngineStatus(active=int(self._lock.locked()), pending=0, kv_cache_usage=0.0)

    # -- internals -------------------------------------------------------------------------
    def _config(self, options: GenerationOptions, constraint: Constraint | None = None) -> Any:
        """genai's config for `options` and the chosen constraint, checked by genai now
        rather than mid-generation."""
        if self.backend == "pipeline":
            # LLMPipeline streams one sequence's tokens, without their logprobs
            for name, asked in (("n", options.n > 1), ("logprobs", options.logprobs)):
                if asked:
                    raise OptionError(
                        f"{name} needs the batching backend",
                        "load the engine with backend='batching' (as the server does)",
                        param=name,
                    )
            base = self._pipe.get_generation_config()
        else:
            base = self._pipe.get_config()
        if self.prompt_lookup:
            base = model_defaults(self.path, self.tokenizer)
        return genai_config(base, options, self.prompt_lookup, constraint)

    def _counter(self, plan: Plan, sink: Any, cancel: threading.Event) -> TokenCounter:
        vocab = None
        if plan.options.logprobs:
            vocab = self._vocab = self._vocab or TokenBytes(self.tokenizer)
        return TokenCounter(self.tokenizer, sink, cancel, vocab)

    def _generate(self, plan: Plan, counter: TokenCounter) -> None:
        """LLMPipeline, in a worker thread: one request at a time."""
        error: BaseException | None = None
        try:
            with self._lock:
                counter.start = time.perf_counter()  # waiting for the lock is not generating
                self._pipe.generate(_tokenized(plan.ids), plan.config, streamer_class()(counter))
        except BaseException as e:
            error = e
        finally:
            counter.finish(error)

    def _vision_inputs(self, plan: Plan) -> tuple[str, list[Any]]:
        raise NotImplementedError  # VisionEngine's (vision.py)

    def _start(self, plan: Plan, counter: TokenCounter) -> Callable[[bool], None]:
        """Start generating; return what to call once the consumer has left (after it set
        the cancel event): it wakes the step loop, or (`wait`) joins the pipeline's thread so
        that generation has really stopped when `stream()` returns."""
        if self._steps is None and self.backend == "batching":
            raise EngineError("the engine is closed", "load the model again")
        if self._steps is not None:
            steps = self._steps
            vision = self._vision_inputs(plan) if self.KIND == "vision" else None
            steps.submit(next(self._ids), _ids_tensor(plan.ids), plan.config, counter, vision)
            return lambda wait: steps.wake()
        thread = threading.Thread(
            target=self._generate, args=(plan, counter), name="ovchat-generate"
        )
        thread.daemon = True
        thread.start()
        return lambda wait: thread.join() if wait else None


def _ids_tensor(ids: Sequence[int]) -> Any:
    import numpy as np
    import openvino as ov

    return ov.Tensor(np.asarray([list(ids)], dtype=np.int64))


def _tokenized(ids: Sequence[int]) -> Any:
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    mask = ov.Tensor(np.ones((1, len(ids)), dtype=np.int64))
    return ov_genai.TokenizedInputs(_ids_tensor(ids), mask)


def genai_config(
    base: Any, options: GenerationOptions, prompt_lookup: bool, constraint: Constraint | None
) -> Any:
    """genai's config: `base` (the model's defaults) with `options` and the constraint the
    grammar check chose applied, validated by genai now rather than mid-generation."""
    cfg = apply_options(base, options)
    if prompt_lookup:
        cfg.num_assistant_tokens = PROMPT_LOOKUP_TOKENS
        cfg.max_ngram_size = PROMPT_LOOKUP_NGRAM
    if constraint is not None:
        cfg.structured_output_config = constraint.build()
    try:
        cfg.validate()
    except RuntimeError as e:
        raise OptionError(f"the engine refused these options: {reason(e)}") from e
    return cfg


def model_defaults(path: Path, tokenizer: Any) -> Any:
    """The model's own generation config. genai's prompt-lookup pipelines (both backends)
    start from a blank one instead: no sampling defaults, no end token."""
    import openvino_genai as ov_genai

    file = path / "generation_config.json"
    cfg = ov_genai.GenerationConfig(str(file)) if file.is_file() else ov_genai.GenerationConfig()
    if cfg.eos_token_id < 0:
        cfg.set_eos_token_id(tokenizer.get_eos_token_id())
    return cfg
