"""EngineClient: a batching Engine that runs in a process of its own (enginecore.py), with
the Engine's interface — plan, checked, encode, render, astream, stream, generate, status,
cancel_all, close — so that the server's routes work on it unchanged.

Planning stays here: the tokenizer (openvino-tokenizers, a few MB) is loaded in this
process too, so a request's prompt is tokenized, fitted to the window and its options
checked by genai before anything is sent; only the plan's token ids and options cross the
pipe. The chunks of each engine step come back in one message, read by a reader thread,
which hands them to their consumers (asyncio queues: one `call_soon_threadsafe` per event
loop per message; or queue.Queues): the event loop never waits on the engine, and is woken
once per step, not once per token. A caller's cancel event (set while its consumer still
waits, e.g. by a route that saw its client leave) is noticed by one watcher thread for all
requests; a consumer that leaves tells the engine at once.

If the engine process dies (killed, out of memory, a crash inside OpenVINO), every request
in flight ends with an `EngineGoneError` and `dead` is set; `on_exit` (set by the server's
pool) is called from the reader thread so that a new process can be started.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import multiprocessing
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import EngineError, OptionError
from ..modeldir import check_model_dir, model_kind, read_model_info
from ..options import GenerationOptions
from . import enginecore, wire
from .device import DEFAULT_DEVICE
from .engine import (
    DEFAULT_KV_CACHE_GB,
    DEFAULT_MAX_NUM_SEQS,
    DEFAULT_PREFILL_CHUNK,
    genai_config,
    model_defaults,
)
from .front import PlanningFront
from .planner import Plan, Planner, Prompt
from .streamer import LoopSink, Sink
from .types import Chunk, Completion, EngineStatus
from .vision import VisionFront

CANCEL_POLL_SECONDS = 0.1  # how often the watcher checks the cancel events in flight
STOP_SECONDS = 30.0  # an engine process asked to stop is killed after this long
LOAD_SECONDS = 3600.0  # generous: a big model on a slow disk


class EngineGoneError(EngineError):
    """The engine process stopped while requests were in flight (or before they were sent)."""


class EngineClient(PlanningFront):
    """A chat model served by an engine process (continuous batching)."""

    backend = "batching"

    def __init__(
        self,
        model_dir: str | Path,
        device: str = DEFAULT_DEVICE,
        properties: Mapping[str, Any] | None = None,
        kv_cache_gb: float = DEFAULT_KV_CACHE_GB,
        max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
        prefill_chunk: int = DEFAULT_PREFILL_CHUNK,
        prompt_lookup: bool = False,
        warmup: str | None = None,
    ) -> None:
        """Start the engine process and wait until it has loaded the model (raising the
        error it met loading it, as Engine would)."""
        import openvino_genai as ov_genai

        self.path = check_model_dir(model_dir)
        self.info = read_model_info(self.path)
        self.device = device
        self.prompt_lookup = prompt_lookup
        args = wire.EngineArgs(
            self.path, device, dict(properties or {}), kv_cache_gb, max_num_seqs,
            prefill_chunk, prompt_lookup, warmup,
        )  # fmt: skip
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding OpenVINO
        self._conn, child = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(
            target=enginecore.main, args=(child, args), name=f"ovchat-engine:{self.info.name}"
        )
        self._proc.daemon = True  # never outlives this process
        self._proc.start()
        child.close()
        self.tokenizer = ov_genai.Tokenizer(str(self.path))
        self.planner = Planner(self.tokenizer, self.info.context_length)
        self._base: Any = None
        first = self._conn.poll(LOAD_SECONDS) and self._recv_first()
        if not isinstance(first, wire.Ready):
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
            self._conn.close()
            if isinstance(first, wire.Failed):
                raise first.error.exception()
            raise EngineGoneError("the engine process stopped while loading the model")
        self.pid = first.pid
        self.kv_pool_tokens = first.kv_pool_tokens
        self.load_seconds = first.load_seconds
        self.dead = False
        self.on_exit: Callable[[], None] | None = None
        self._status = EngineStatus(0, 0, 0.0)
        # answers ended by the engine, by finish reason ("cancelled": a Cancel reached it)
        self.finished: collections.Counter[str] = collections.Counter()
        self._ids = itertools.count()
        self._sinks: dict[int, Sink] = {}
        self._cancels: dict[int, threading.Event] = {}  # in flight, the engine not yet told
        self._lock = threading.Lock()  # the sinks, the cancels and the pipe's writing end
        self._watching = threading.Event()  # set while there are cancel events to watch
        self._reader = threading.Thread(target=self._read, name="ovchat-engine-reader")
        self._reader.daemon = True
        self._reader.start()
        watcher = threading.Thread(target=self._watch, name="ovchat-engine-cancels")
        watcher.daemon = True
        watcher.start()

    def _recv_first(self) -> Any:
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            return None

    def checked(self, plan: Plan, grammar_timeout: float | None = None) -> Plan:
        """`plan` with genai's config built and validated here (the engine process builds
        its own from the same options and the constraint chosen here, which it does not
        check again): every mistake surfaces before anything is sent."""
        if plan.config is not None:
            return plan
        if self._base is None:
            self._base = model_defaults(self.path, self.tokenizer)
        chosen = self.constraint(plan, grammar_timeout)
        cfg = genai_config(self._base, plan.options, self.prompt_lookup, chosen)
        return replace(plan, config=cfg, constraint=chosen)

    # -- the primitive ----------------------------------------------------------------------
    async def astream(
        self,
        prompt: Prompt | Plan,
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> AsyncIterator[Chunk]:
        """Engine.astream: the same chunks, made in the engine process. Leaving early (or
        setting `cancel`) cancels the request there."""
        plan = self.checked(prompt) if isinstance(prompt, Plan) else self.plan(prompt, options)
        cancel = cancel or threading.Event()
        aq: asyncio.Queue[Any] = asyncio.Queue()
        rid = self._submit(plan, LoopSink(asyncio.get_running_loop(), aq), cancel)
        ended = False
        try:
            while True:
                kind, payload = await aq.get()
                if kind == "end":
                    ended = True
                    if payload is not None:
                        raise payload
                    return
                yield payload
        finally:
            cancel.set()
            if not ended:
                self._cancel(rid)

    def stream(
        self,
        prompt: Prompt | Plan,
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Chunk]:
        """Engine.stream, for callers without an event loop."""
        plan = self.checked(prompt) if isinstance(prompt, Plan) else self.plan(prompt, options)
        cancel = cancel or threading.Event()
        q: queue.Queue[Any] = queue.Queue()
        rid = self._submit(plan, q, cancel)
        ended = False
        try:
            while True:
                kind, payload = q.get()
                if kind == "end":
                    ended = True
                    if payload is not None:
                        raise payload
                    return
                yield payload
        finally:
            cancel.set()
            if not ended:
                self._cancel(rid)

    def generate(
        self, prompt: Prompt | Plan, options: GenerationOptions | None = None
    ) -> Completion:
        plan = self.checked(prompt) if isinstance(prompt, Plan) else self.plan(prompt, options)
        if plan.options.n > 1:
            raise OptionError(
                "generate() gives one answer", "stream() gives n, each chunk with its index",
                param="n",
            )  # fmt: skip
        return Completion.collect(self.stream(plan))

    def status(self) -> EngineStatus:
        """The engine's occupancy as it last reported it (every few tens of ms, or after the
        step under way), bounded by what this side knows: the answers still in flight (sent
        and not ended); those the report has not seen yet count as pending."""
        s, inflight = self._status, len(self._sinks)
        if inflight == 0:  # every answer has ended: whatever the last report said
            return replace(s, active=0, pending=0, kv_cache_usage=0.0)
        active = min(s.active, inflight)
        return replace(s, active=active, pending=max(s.pending, inflight - active))

    def cancel_all(self) -> None:
        """End every answer in flight (finish reason "cancelled") and any submitted later."""
        self._post(wire.CancelAll())

    def close(self) -> None:
        """Stop the engine process (its answers in flight end first); kill it if it does not
        stop in time."""
        self.close_grammar()
        self._post(wire.Stop())
        self._proc.join(STOP_SECONDS)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()
        self._reader.join(5)
        self._watching.set()  # the watcher sees `dead` and returns

    @property
    def alive(self) -> bool:
        return not self.dead and self._proc.is_alive()

    # -- the pipe ----------------------------------------------------------------------------
    def _submit(self, plan: Plan, sink: Sink, cancel: threading.Event) -> int:
        rid = next(self._ids)
        with self._lock:
            if self.dead:
                raise _gone()
            self._sinks[rid] = sink
            self._cancels[rid] = cancel
            self._watching.set()
        if not self._post(wire.Submit(rid, replace(plan, config=None))):
            with self._lock:
                self._sinks.pop(rid, None)
                self._cancels.pop(rid, None)
            raise _gone()
        return rid

    def _cancel(self, rid: int) -> None:
        """Tell the engine (once) that request `rid`'s consumer has left."""
        with self._lock:
            told = self._cancels.pop(rid, None) is None  # told already, or it has ended
        if not told:
            self._post(wire.Cancel(rid))

    def _watch(self) -> None:
        """The watcher thread: cancel events set by callers whose consumers still wait, told
        to the engine within CANCEL_POLL_SECONDS; asleep while nothing is in flight."""
        while True:
            self._watching.wait()
            if self.dead:
                return
            time.sleep(CANCEL_POLL_SECONDS)
            with self._lock:
                due = [rid for rid, ev in self._cancels.items() if ev.is_set()]
                if not self._cancels:
                    self._watching.clear()
            for rid in due:
                self._cancel(rid)

    def _post(self, msg: Any) -> bool:
        with self._lock:
            if self.dead:
                return False
            try:
                self._conn.send(msg)
                return True
            except (OSError, ValueError):
                return False

    def _read(self) -> None:
        """The reader thread: chunks to their consumers, until the pipe closes."""
        while True:
            try:
                batch = self._conn.recv()
            except (EOFError, OSError):
                break
            self._dispatch(batch)
        self._proc.join(STOP_SECONDS)
        with self._lock:
            self.dead = True
            sinks, self._sinks = self._sinks, {}
            self._cancels.clear()
        self._watching.set()  # the watcher sees `dead` and returns
        self._status = EngineStatus(0, 0, 0.0)
        for sink in sinks.values():  # requests in flight when the process died
            sink.put(("end", _gone()))
        unexpected = sinks or self._proc.exitcode not in (0, None)
        if unexpected and self.on_exit is not None:
            self.on_exit()

    def _dispatch(self, batch: list[Any]) -> None:
        """One message from the engine (a step's chunks, ends, status) to the consumers."""
        loops: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}

        def deliver(sink: Sink | None, event: Any) -> None:
            if isinstance(sink, LoopSink):  # handed out below, one wake-up per loop
                loops.setdefault(sink.loop, []).append((sink.aq, event))
            elif sink is not None:
                sink.put(event)

        for msg in batch:
            if isinstance(msg, wire.Out):
                if msg.chunk.finish_reason is not None:
                    self.finished[msg.chunk.finish_reason] += 1
                deliver(self._sinks.get(msg.rid), ("text", msg.chunk))
            elif isinstance(msg, wire.End):
                with self._lock:
                    sink = self._sinks.pop(msg.rid, None)
                    self._cancels.pop(msg.rid, None)
                err = None if msg.error is None else msg.error.exception()
                deliver(sink, ("end", err))
            elif isinstance(msg, wire.Status):
                self._status = msg.status
        for loop, items in loops.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                loop.call_soon_threadsafe(_hand_out, items)


def _hand_out(items: list[tuple[Any, Any]]) -> None:
    """On the event loop: one engine step's events to their requests' queues."""
    for aq, event in items:
        aq.put_nowait(event)


def _gone() -> EngineGoneError:
    return EngineGoneError(
        "the engine process stopped unexpectedly", "it is being restarted; retry shortly"
    )


class VisionEngineClient(VisionFront, EngineClient):
    """A vision-language model served by an engine process: planned here with its images
    (decoded and checked, errors before anything is sent), batched there."""


def open_client(model_dir: str | Path, **kw: Any) -> EngineClient:
    """An EngineClient for a chat export, a VisionEngineClient for a vision-language one."""
    if model_kind(Path(model_dir).expanduser()) == "vision":
        return VisionEngineClient(model_dir, **kw)
    return EngineClient(model_dir, **kw)
