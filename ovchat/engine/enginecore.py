"""The engine process: one chat or vision-language model's batching Engine (its
ContinuousBatchingPipeline and StepLoop) in a process of its own, driven over a pipe by an
EngineClient (remote.py). A vision request's images cross the pipe in its plan (decoded
uint8 arrays: bytes, pickled).

Why a process: genai's step() holds the GIL for the whole step (benchmarks/step_gil.py: a
Python thread got no tick for a whole multi-second prefill step), so an engine inside the
server's process stalls its event loop — /health, /metrics, admission, the tokenizing of
other requests and the streaming of tokens already made — for as long as a step lasts. Here
the steps hold this process's GIL only.

Inside, an asyncio loop runs `Engine.astream` for each submitted request (the step loop is
the same as in-process) and sends its chunks back; a thread reads the pipe. Every submitted
request gets exactly one `End`. The process ignores SIGINT (a terminal's Ctrl-C reaches the
whole process group; the server ends the answers itself, then stops it) and exits when its
pipe closes, so it never outlives the server.
"""

from __future__ import annotations

import asyncio
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
from .vision import open_engine

STATUS_SECONDS = 0.05  # how often the engine's occupancy is sent (when it changed)


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
    try:
        asyncio.run(_Core(conn, engine).serve())
    finally:
        engine.close()
        conn.close()


class _Core:
    def __init__(self, conn: Connection, engine: Engine) -> None:
        self.conn = conn
        self.engine = engine
        self.cancels: dict[int, threading.Event] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.outbox: list[Any] = []
        self.status: Any = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def read() -> None:  # a thread: the pipe's reads block
            while True:
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):  # the server is gone
                    msg = wire.Stop()
                loop.call_soon_threadsafe(inbox.put_nowait, msg)
                if isinstance(msg, wire.Stop):
                    return

        threading.Thread(target=read, name="ovchat-engine-pipe", daemon=True).start()
        status = loop.create_task(self._publish_status())
        while True:
            msg = await inbox.get()
            if isinstance(msg, wire.Submit):
                self.cancels[msg.rid] = threading.Event()
                task = loop.create_task(self._run(msg.rid, msg.plan))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(msg, wire.Cancel):
                if msg.rid in self.cancels:
                    self.cancels[msg.rid].set()
            elif isinstance(msg, wire.CancelAll):
                self.engine.cancel_all()
            elif isinstance(msg, wire.Stop):
                break
        status.cancel()
        self.engine.cancel_all()
        if self.tasks:  # their End messages, while the parent may still be listening
            await asyncio.wait(self.tasks, timeout=10)
        self._flush()

    async def _run(self, rid: int, plan: Any) -> None:
        error = None
        try:
            async for chunk in self.engine.astream(plan, cancel=self.cancels[rid]):
                self._send(wire.Out(rid, chunk))
        except Exception as e:
            error = wire.WireError.of(e)
        finally:
            del self.cancels[rid]
        self._send(wire.End(rid, error))

    async def _publish_status(self) -> None:
        while True:
            status = self.engine.status()
            if status != self.status:
                self.status = status
                self._send(wire.Status(status))
            await asyncio.sleep(STATUS_SECONDS)

    def _send(self, msg: Any) -> None:
        """Queue `msg`; what is queued goes in one pipe write once the loop is free."""
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self.outbox.append(msg)

    def _flush(self) -> None:
        batch, self.outbox = self.outbox, []
        if batch:
            with contextlib.suppress(OSError, ValueError):  # the server is gone: nobody to tell
                self.conn.send(batch)
