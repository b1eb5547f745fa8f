"""The continuous-batching step loop behind Engine(backend="batching").

Hand-written because openvino-genai's Python API leaves the step loop to the caller (as OVMS
does): one thread calls ContinuousBatchingPipeline.step() for every request, hands each
request's new tokens to its TokenCounter, and cancels requests whose consumer went away.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError
from .streamer import TokenCounter
from .types import EngineStatus


@dataclass
class _Request:
    rid: int
    ids: Any  # an ov.Tensor of shape [1, n]
    config: Any  # genai's GenerationConfig
    counter: TokenCounter
    handle: Any = None
    answers: dict[int, int] = field(default_factory=dict)  # genai's sequence id → answer index

    def index(self, seq_id: int) -> int:
        """Answers are numbered 0, 1, ... in the order genai's sequences first appear."""
        return self.answers.setdefault(seq_id, len(self.answers))


class StepLoop:
    """Drives ContinuousBatchingPipeline.step() in one thread for all requests.

    Every request submitted gets exactly one "end" event, whatever happens (finished,
    cancelled, a failing step, the loop stopped or crashed), so no consumer waits forever.
    """

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self._cv = threading.Condition()
        self._active: dict[int, _Request] = {}
        self._new: list[_Request] = []
        self._stopped = False
        self._kv_usage = 0.0
        self._thread = threading.Thread(target=self._run, name="ovchat-steps", daemon=True)
        self._thread.start()

    def status(self) -> EngineStatus:
        with self._cv:
            return EngineStatus(len(self._active), len(self._new), self._kv_usage)

    def submit(self, rid: int, ids: Any, config: Any, counter: TokenCounter) -> None:
        with self._cv:
            if self._stopped:
                counter.finish(EngineError("the engine is closed", "load the model again"))
                return
            self._new.append(_Request(rid, ids, config, counter))
            self._cv.notify()

    def wake(self) -> None:
        """A consumer went away (its cancel event is set): wake the loop so it cancels at once."""
        with self._cv:
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # never leave a consumer waiting on a dead loop
            with self._cv:
                self._stopped = True
                self._fail_all(e)
            raise

    def _fail_all(self, error: BaseException) -> None:
        """End every request held (called with the lock held or from the loop thread)."""
        reqs = [*self._new, *self._active.values()]
        self._new, self._active = [], {}
        for r in reqs:
            r.counter.finish(error)

    def _loop(self) -> None:
        import openvino_genai as ov_genai

        running = ov_genai.GenerationStatus.RUNNING
        length = ov_genai.GenerationFinishReason.LENGTH
        while True:
            with self._cv:
                while not self._stopped and not self._new and not self._active:
                    self._cv.wait()
                if self._stopped:
                    self._fail_all(EngineError("the engine was closed during generation"))
                    return
                new, self._new = self._new, []
            for req in new:
                if req.counter.cancel.is_set():  # gone before it started
                    req.counter.finish()
                    continue
                try:
                    req.handle = self.pipe.add_request(req.rid, req.ids, req.config)
                except Exception as e:
                    req.counter.finish(e)
                    continue
                self._active[req.rid] = req
            try:
                if self.pipe.has_non_finished_requests():
                    self.pipe.step()
                # genai reports a percentage; the engine's status is a ratio
                self._kv_usage = float(self.pipe.get_metrics().cache_usage) / 100.0
            except Exception as e:
                for req in self._active.values():
                    req.handle.cancel()
                    req.counter.finish(e)
                self._active.clear()
                continue
            for rid in list(self._active):
                req = self._active[rid]
                try:
                    if req.counter.cancel.is_set():
                        req.handle.cancel()  # frees its KV-cache blocks
                        done = True
                    else:
                        if req.handle.can_read():
                            for seq_id, out in sorted(req.handle.read().items()):
                                i = req.index(seq_id)
                                if out.generated_ids:
                                    logprobs = out.generated_log_probs
                                    req.counter.write(list(out.generated_ids), i, logprobs)
                                if out.finish_reason == length:
                                    req.counter.state.length_cut.add(i)
                        done = req.handle.get_status() != running
                        if done:
                            req.counter.end()
                except Exception as e:  # e.g. detokenizing: fail this request only
                    req.counter.state.error = e
                    req.handle.cancel()
                    done = True
                if done:
                    del self._active[rid]
                    req.counter.finish()
