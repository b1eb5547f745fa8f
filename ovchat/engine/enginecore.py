"""The engine process: one chat or vision-language model's batching Engine (its
ContinuousBatchingPipeline and StepLoop) in a process of its own, driven over a pipe by an
EngineClient (remote.py). A vision request's images cross the pipe in its plan (decoded
uint8 arrays: bytes, pickled).

Why a process: genai's step() holds the GIL for the whole step (benchmarks/step_gil.py: a
Python thread got no tick for a whole multi-second prefill step), so an engine inside the
server's process stalls its event loop — /health, /metrics, admission, the tokenizing of
other requests and the streaming of tokens already made — for as long as a step lasts. Here
the steps hold this process's GIL only.

Inside, the step loop's thread does all of a request's work: it hands each step's tokens to
their TokenCounters, which make the chunks right there, and after the step it sends every
chunk, end and status change of that step in one pipe message (`on_step`): one pickle and
one write per step, not per token, and no other thread to wake. A thread reads the pipe and
starts requests on the step loop directly, so a request reaches genai at the next step. Every
submitted request gets exactly one `End`. The process ignores SIGINT (a terminal's Ctrl-C
reaches the whole process group; the server ends the answers itself, then stops it) and
exits when its pipe closes, so it never outlives the server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from ..options import GenerationOptions
from . import wire
from .engine import Engine
from .planner import Plan
from .streamer import TokenCounter
from .vision import open_engine


def main(conn: Connection, args: wire.EngineArgs) -> None:
    """The process's target (multiprocessing, spawn): load, say Ready (or Failed), serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    t0 = time.perf_counter()
    try:
        engine = open_engine(
            args.model_dir,
            device=args.device,
            properties=args.properties,
            backend="batching",
            kv_cache_gb=args.kv_cache_gb,
            max_num_seqs=args.max_num_seqs,
            prefill_chunk=args.prefill_chunk,
            prompt_lookup=args.prompt_lookup,
        )
        if args.warmup is not None:
            engine.generate(args.warmup, GenerationOptions(max_new_tokens=1))
    except BaseException as e:
        conn.send(wire.Failed(wire.WireError.of(e)))
        conn.close()
        return
    conn.send(wire.Ready(time.perf_counter() - t0, os.getpid(), engine.kv_pool_tokens))
    core = _Core(conn, engine)
    core.flush()  # the status as loaded (and warmed up): the KV pool's size before any request
    try:
        core.serve()
    finally:
        engine.close()  # ends what is left (each with its End), sent by the last on_step
        core.flush()
        conn.close()


class _Outgoing:
    """A request's Sink in the engine process: its events become chunks in the outbox (on the
    step thread), its end becomes its last chunks and one End."""

    def __init__(self, core: _Core, rid: int, plan: Plan, cancel: threading.Event) -> None:
        self.core, self.rid, self.plan = core, rid, plan
        self.counter: TokenCounter = core.engine.counter(plan, self, cancel)

    def put(self, item: tuple[str, Any]) -> None:
        kind, payload = item
        counter, n_prompt = self.counter, self.plan.prompt_tokens
        if kind == "text":
            self.core.post([wire.Out(self.rid, counter.chunk(n_prompt, payload))])
            return
        o = self.plan.options
        try:
            finals = counter.finals(n_prompt, o.max_new_tokens, o.n)
        except Exception as e:
            out: list[Any] = [wire.End(self.rid, wire.WireError.of(e))]
        else:
            out = [*(wire.Out(self.rid, c) for c in finals), wire.End(self.rid)]
        self.core.post(out)
        self.core.ended(self.rid)


class _Core:
    def __init__(self, conn: Connection, engine: Engine) -> None:
        self.conn = conn
        self.engine = engine
        self.cancels: dict[int, threading.Event] = {}
        self.lock = threading.Lock()  # the outbox, the cancels, the pipe's writing end
        self.outbox: list[Any] = []
        self.status: Any = None
        self.idle = threading.Condition(self.lock)  # notified when a request has ended
        engine.on_step(self.flush)

    def serve(self) -> None:
        """Read the pipe (this thread) until Stop or the pipe closes."""
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):  # the server is gone
                msg = wire.Stop()
            if isinstance(msg, wire.Submit):
                self._begin(msg.rid, msg.plan)
            elif isinstance(msg, wire.Cancel):
                with self.lock:
                    cancel = self.cancels.get(msg.rid)
                if cancel is not None:
                    cancel.set()
                    self.engine.wake()
            elif isinstance(msg, wire.CancelAll):
                self.engine.cancel_all()
            elif isinstance(msg, wire.Stop):
                break
        self.engine.cancel_all()
        with self.lock:  # their End messages, while the parent may still be listening
            self.idle.wait_for(lambda: not self.cancels, timeout=10)

    def _begin(self, rid: int, plan: Plan) -> None:
        cancel = threading.Event()
        with self.lock:
            self.cancels[rid] = cancel
        try:
            checked = self.engine.checked(plan)
            self.engine.begin(checked, _Outgoing(self, rid, checked, cancel).counter)
            with self.lock:
                ended = rid not in self.cancels
            if ended:  # at once (a closed step loop): no step will send it
                self.flush()
        except Exception as e:
            self.ended(rid)
            self.post([wire.End(rid, wire.WireError.of(e))])
            self.flush()

    def ended(self, rid: int) -> None:
        with self.lock:
            self.cancels.pop(rid, None)
            self.idle.notify_all()

    def post(self, msgs: list[Any]) -> None:
        with self.lock:
            self.outbox.extend(msgs)

    def flush(self) -> None:
        """Send what the step produced, and the status if it changed, in one pipe write."""
        status = self.engine.status()
        with self.lock:
            batch, self.outbox = self.outbox, []
            if status != self.status:
                self.status = status
                batch.append(wire.Status(status))
            if batch:
                with contextlib.suppress(OSError, ValueError):  # the server is gone
                    self.conn.send(batch)
