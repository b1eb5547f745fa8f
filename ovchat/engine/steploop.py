"""The continuous-batching step loop behind Engine(backend="batching").

Hand-written because openvino-genai's Python API leaves the step loop to the caller (as OVMS
does): one thread calls ContinuousBatchingPipeline.step() for every request, hands each
request's new tokens to its TokenCounter, and cancels requests whose consumer went away.

Short prompts first: genai prefills prompts in chunks (dynamic split-fuse) but strictly in
arrival order, so a short request that arrives while a long prompt is being prefilled waits
for all of it (a 7,000-token prompt: many seconds). When a short prompt arrives, a long one
still in its prefill is cancelled in genai and added again after the next step: the blocks
it has computed stay in genai's prefix cache, so it resumes where it was (nothing is
computed twice), now behind the newcomer.

Images (a vision-language model's pipeline): such a request is added as its rendered text
and images, genai encodes the images when it adds it, and its image tokens are scheduled as
any prompt's. It is never moved behind a newcomer (adding it again would encode its images
again). When it ends, genai's metrics give its whole prompt count (with the image tokens)
and the seconds spent encoding the images.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError
from .streamer import TokenCounter
from .types import EngineStatus

STOP_STEPS = 4  # steps allowed at close for genai to free cancelled requests' blocks


@dataclass
class _Request:
    rid: int
    ids: Any  # an ov.Tensor of shape [1, n]
    config: Any  # genai's GenerationConfig
    counter: TokenCounter
    handle: Any = None
    stepped: bool = False  # in genai for at least one step since it was (re)added
    requeue: bool = False  # cancelled in genai to let a short prompt go first; re-add it
    answers: dict[int, int] = field(default_factory=dict)  # genai's sequence id → answer index
    vision: tuple[str, list[Any]] | None = None  # a vision model's (text, image tensors)

    @property
    def prompt_tokens(self) -> int:
        return int(self.ids.shape[1])

    def add_to(self, pipe: Any, rid: int) -> Any:
        if self.vision is not None:
            text, images = self.vision
            return pipe.add_request(rid, text, images, self.config)
        return pipe.add_request(rid, self.ids, self.config)

    def measure(self) -> None:
        """A vision request that ended: its prompt with the image tokens, and the encoding
        time, from genai's metrics (only there once genai has finished the request)."""
        if self.vision is None or self.handle is None:
            return
        try:
            metrics = self.handle.get_vlm_perf_metrics()
            state = self.counter.state
            state.prompt_tokens = int(metrics.get_num_input_tokens()) or None
            state.image_seconds = float(metrics.get_prepare_embeddings_duration().mean) / 1000
        except RuntimeError:  # cancelled or dropped before genai finished it: no metrics
            pass

    def index(self, seq_id: int) -> int:
        """Answers are numbered 0, 1, ... in the order genai's sequences first appear."""
        return self.answers.setdefault(seq_id, len(self.answers))


class StepLoop:
    """Drives ContinuousBatchingPipeline.step() in one thread for all requests.

    Every request submitted gets exactly one "end" event, whatever happens (finished,
    cancelled, a failing step, the loop stopped or crashed), so no consumer waits forever.
    """

    def __init__(self, pipe: Any, prefill_chunk: int = 256) -> None:
        self.pipe = pipe
        self.prefill_chunk = prefill_chunk  # a prompt longer than this takes several steps
        self._requeued_ids = itertools.count(1 << 48)  # genai ids for requests added again
        self._cv = threading.Condition()
        self._active: dict[int, _Request] = {}
        self._new: list[_Request] = []
        self._stopped = False
        self._cancelling = False
        self._kv_usage = 0.0
        self._kv_bytes = 0
        # called on this thread after each step's tokens were handed out (enginecore.py: one
        # pipe message per step) and after requests were ended without a step
        self.on_step: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="ovchat-steps", daemon=True)
        self._thread.start()

    def status(self) -> EngineStatus:
        with self._cv:
            return EngineStatus(len(self._active), len(self._new), self._kv_usage, self._kv_bytes)

    def submit(
        self,
        rid: int,
        ids: Any,
        config: Any,
        counter: TokenCounter,
        vision: tuple[str, list[Any]] | None = None,
    ) -> None:
        """Queue a request: its prompt's token ids, or (a vision model) `vision`, its text
        and image tensors (`ids` then only sizes it)."""
        with self._cv:
            if self._stopped:
                counter.finish(EngineError("the engine is closed", "load the model again"))
                return
            if self._cancelling:
                counter.cancel.set()
            self._new.append(_Request(rid, ids, config, counter, vision=vision))
            self._cv.notify()

    def wake(self) -> None:
        """A consumer went away (its cancel event is set): wake the loop so it cancels at once."""
        with self._cv:
            self._cv.notify()

    def cancel_all(self) -> None:
        """End every request held, as if each consumer had left (finish reason "cancelled"):
        a server shutting down ends its answers cleanly before the engine is closed."""
        with self._cv:
            self._cancelling = True  # and any request submitted from now on
            for r in [*self._new, *self._active.values()]:
                r.counter.cancel.set()
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
        finally:
            self._stepped()

    def _stepped(self) -> None:
        if self.on_step is not None:
            self.on_step()

    def _release_handles(self) -> None:
        """Cancel genai's requests and step once more, so its scheduler frees their KV-cache
        blocks before the pipeline is destroyed (else genai logs leaked blocks at exit)."""
        for req in self._active.values():
            if req.handle is not None:
                req.handle.cancel()
        for _ in range(STOP_STEPS):
            try:
                if not self.pipe.has_non_finished_requests():
                    break
                self.pipe.step()
            except Exception:  # closing anyway: what is left is genai's to free
                break

    def _fail_all(self, error: BaseException) -> None:
        """End every request held (called with the lock held or from the loop thread)."""
        reqs = [*self._new, *self._active.values()]
        self._new, self._active = [], {}
        for r in reqs:
            r.counter.finish(error)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and not self._new and not self._active:
                    self._cv.wait()
                if self._stopped:
                    self._release_handles()
                    self._fail_all(EngineError("the engine was closed during generation"))
                    return
                new, self._new = self._new, []
            self._step(new)
            self._stepped()

    def _step(self, new: list[_Request]) -> None:
        """Add the new requests, run one step, hand out its tokens."""
        import openvino_genai as ov_genai

        running = ov_genai.GenerationStatus.RUNNING
        dropped = ov_genai.GenerationStatus.IGNORED  # genai's "out of KV-cache blocks"
        length = ov_genai.GenerationFinishReason.LENGTH
        unfinished = ov_genai.GenerationFinishReason.NONE
        short_came = False
        for req in new:
            if req.counter.cancel.is_set():  # gone before it started
                req.counter.finish()
                continue
            try:
                req.handle = req.add_to(self.pipe, req.rid)
            except Exception as e:
                req.counter.finish(e)
                continue
            self._active[req.rid] = req
            short_came = short_came or req.prompt_tokens <= self.prefill_chunk
        if short_came:
            self._let_short_prompts_first({r.rid for r in new})
        try:
            if self.pipe.has_non_finished_requests():
                self.pipe.step()
            metrics = self.pipe.get_metrics()
            # genai reports a percentage; the engine's status is a ratio
            self._kv_usage = float(metrics.cache_usage) / 100.0
            self._kv_bytes = int(metrics.kv_cache_size_in_bytes)
        except Exception as e:
            for req in self._active.values():
                req.handle.cancel()
                req.counter.finish(e)
            self._active.clear()
            return
        for rid in list(self._active):
            req = self._active[rid]
            try:
                if req.counter.cancel.is_set():
                    req.handle.cancel()  # frees its KV-cache blocks
                    done = True
                elif req.requeue:  # cancelled a step ago: its computed blocks are cached
                    req.requeue = req.stepped = False
                    req.answers.clear()  # the new request's sequences get new ids
                    rid2 = next(self._requeued_ids)
                    req.handle = req.add_to(self.pipe, rid2)
                    continue
                else:
                    req.stepped = True
                    if req.handle.can_read():
                        for seq_id, out in sorted(req.handle.read().items()):
                            i = req.index(seq_id)
                            if out.generated_ids:
                                logprobs = out.generated_log_probs
                                req.counter.write(list(out.generated_ids), i, logprobs)
                            if out.finish_reason == length:
                                req.counter.state.length_cut.add(i)
                            if out.finish_reason != unfinished:
                                req.counter.state.ended.add(i)
                    status = req.handle.get_status()
                    done = status != running
                    if done:
                        # genai drops a request whose sequences no longer fit in the
                        # pool (nothing left to preempt): its answers were cut, not done
                        req.counter.state.memory_cut = status == dropped
                        req.measure()
                        req.counter.end()
            except Exception as e:  # e.g. detokenizing: fail this request only
                req.counter.state.error = e
                req.handle.cancel()
                done = True
            if done:
                del self._active[rid]
                req.counter.finish()
        if not self._active:
            self._kv_usage = 0.0  # nothing runs: what is left is a free prefix cache

    def _let_short_prompts_first(self, newcomers: set[int]) -> None:
        """Cancel (to add again after the next step) every long prompt still being
        prefilled that was added before a short newcomer. Only one that has had a step
        since it was last added: under a stream of short requests, it still gets every
        other step."""
        for req in self._active.values():
            if req.rid in newcomers or req.requeue or not req.stepped or req.vision:
                continue
            if req.counter.tokens == 0 and req.prompt_tokens > self.prefill_chunk:
                req.handle.cancel()
                req.requeue = True
