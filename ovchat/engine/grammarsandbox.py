"""GrammarCheck: a request's constraint compiled by genai's own machinery in a sandbox — a
process of its own — before the serving pipeline ever sees it.

Why a check: genai compiles the grammar only once the request is scheduled, and a grammar
that does not compile makes ContinuousBatchingPipeline.step() fail for good — every request
of the server, then and after (measured on openvino-genai 2026.4). So each new constraint is
first compiled by genai's LLMPipeline over a stand-in model (all-zero logits, no weights)
that loads the real tokenizer: genai's exact compiler and vocabulary.

Why a process: the grammar library (xgrammar, native code) has aborted the whole process on
a schema within ovchat's size limits (grammarlimits.py), and a compile running in a thread
cannot be stopped. In the sandbox, a crash or a compile past its time limit costs that one
request a 400: the sandbox is killed, started again on next use, and the request's
constraint is remembered as refused, so that sending it again costs nothing. Other requests
never notice (one sandbox per model, started on the first constrained request and kept).
The parent sends the candidates as plain data (structured.Constraint; genai's objects do not
pickle) and gets back which one compiled, or the refusal's words.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import EngineError, OptionError, reason
from .structured import WHAT, Constraint, why

log = logging.getLogger("ovchat.engine")

DEFAULT_TIMEOUT = 30.0  # seconds one request's constraint may take to compile
START_SECONDS = 300.0  # the sandbox's start (import genai, load the tokenizer): generous
REMEMBERED = 512  # constraints remembered as compiling, and as refused (LRU each)
CRASHED = "the grammar compiler failed on it"


class GrammarCheck:
    """The sandbox of one model (its tokenizer in `model_dir`, its logits `vocab_size` wide).

    Thread-safe; one compile at a time. `pid` is the sandbox's process id (None before the
    first constrained request and after a crash)."""

    def __init__(self, model_dir: str | Path, vocab_size: int) -> None:
        self.model_dir = Path(model_dir)
        self.vocab_size = vocab_size
        self.pid: int | None = None
        self.compiling = threading.Event()  # set while the sandbox works on a request
        self._proc: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()  # one compile at a time (the sandbox is one process)
        self._memo = threading.Lock()  # what is remembered (looked up without waiting)
        self._ok: collections.OrderedDict[str, int] = collections.OrderedDict()
        # refused → (the error's words, the time limit it failed at; None: not a timeout)
        self._refused: collections.OrderedDict[str, tuple[tuple[str, str | None, str], Any]]
        self._refused = collections.OrderedDict()

    def choose(self, candidates: Sequence[Constraint], timeout: float | None = None) -> Constraint:
        """The first candidate that compiles; the last one's error (an OptionError naming
        its field) if none does. A compact grammar that fails is ovchat's mistake: logged,
        and genai's own grammar used. `timeout`: seconds the compile may take (None: the
        default); past that, or if the sandbox dies, an OptionError for this request."""
        if not candidates:
            raise ValueError("no candidates")
        limit = DEFAULT_TIMEOUT if timeout is None else timeout
        key = hashlib.sha256("\0".join(c.key for c in candidates).encode()).hexdigest()
        found = self._remembered(key, limit)  # never waits for a compile in progress
        if found is not None:
            return candidates[found]
        with self._lock:
            found = self._remembered(key, limit)  # compiled meanwhile by another request
            if found is not None:
                return candidates[found]
            reply = self._compile(candidates, limit)
            if reply[0] == "ok":
                for c in candidates[: reply[1]]:
                    log.warning("ovchat's compact grammar did not compile: %s", c.key[:500])
                self._remember(self._ok, key, reply[1])
                return candidates[reply[1]]
            param = candidates[-1].param
            what = WHAT.get(param, param)
            words: tuple[str, str | None, str]
            if reply[0] == "refused":
                words, at = (f"{what} cannot be used: {reply[1]}", None, param), None
            elif reply[0] == "timeout":
                words = (
                    f"{what} did not compile within {limit:g} s",
                    "simplify it: fewer or shorter patterns, smaller length and item bounds",
                    param,
                )
                at = limit
            else:
                log.error(
                    "the grammar sandbox died (%s) compiling: %s",
                    reply[1],
                    candidates[-1].key[:500],
                )
                words, at = (f"{what} cannot be used: {CRASHED}", None, param), None
            self._remember(self._refused, key, (words, at))
        raise OptionError(words[0], words[1], param=words[2])

    def _remembered(self, key: str, limit: float) -> int | None:
        """The index of the candidate that compiled before; an OptionError if refused."""
        with self._memo:
            if key in self._ok:
                self._ok.move_to_end(key)
                return self._ok[key]
            if key not in self._refused:
                return None
            (message, fix, param), at = self._refused[key]
            if at is not None and limit > at:  # a longer time limit may be enough
                del self._refused[key]
                return None
            self._refused.move_to_end(key)
        raise OptionError(message, fix, param=param)

    def _remember(self, cache: collections.OrderedDict[str, Any], key: str, value: Any) -> None:
        with self._memo:
            cache[key] = value
            if len(cache) > REMEMBERED:
                cache.popitem(last=False)

    def _compile(self, candidates: Sequence[Constraint], limit: float) -> tuple[Any, ...]:
        """The sandbox's answer: ("ok", index) or ("refused", words); ("timeout",) or
        ("died", how) when the sandbox had to go (it is then killed)."""
        conn = self._start()
        self.compiling.set()
        try:
            conn.send([(c.spec, c.param) for c in candidates])
            if not conn.poll(limit):
                self._stop(kill=True)
                return ("timeout",)
            answer: tuple[Any, ...] = conn.recv()
            return answer
        except (EOFError, OSError) as e:
            how = self._stop(kill=True)
            return ("died", how or reason(e))
        finally:
            self.compiling.clear()

    def _start(self) -> Connection:
        if self._conn is not None and self._proc.is_alive():
            return self._conn
        self._stop(kill=True)
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding OpenVINO
        conn, child = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=main, args=(child, str(self.model_dir), self.vocab_size),
            name="ovchat-grammar", daemon=True,
        )  # fmt: skip
        proc.start()
        child.close()
        self._proc, self._conn = proc, conn
        try:
            if conn.poll(START_SECONDS):
                first = conn.recv()
                if first[0] == "ready":
                    self.pid = proc.pid
                    return conn
                raise EngineError(f"the grammar check could not start: {first[1]}")
        except (EOFError, OSError):
            pass
        self._stop(kill=True)
        raise EngineError("the grammar check could not start", "see the server's log")

    def _stop(self, kill: bool = False) -> str:
        """End the sandbox (if any); how it ended ("killed by signal 6", "exit code 1")."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = self.pid = None
        if proc is None:
            return ""
        if conn is not None:
            conn.close()
        proc.join(0 if kill else 5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        code = proc.exitcode
        if code is None:
            return ""
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def close(self) -> None:
        """Stop the sandbox; one busy compiling is killed (its request gets a 400), never
        waited for."""
        if self._lock.acquire(blocking=False):
            try:
                self._stop()
            finally:
                self._lock.release()
        elif (proc := self._proc) is not None:
            proc.kill()  # the compile waiting on it sees the pipe close, and cleans up


# -- the sandbox process ---------------------------------------------------------------------
def main(conn: Connection, model_dir: str, vocab_size: int) -> None:
    """The sandbox's target (multiprocessing, spawn): build the stand-in pipeline, then
    compile what arrives until the pipe closes. Ignores SIGINT (the server stops it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pipe = _standin(model_dir, vocab_size)
    except Exception as e:
        conn.send(("failed", reason(e)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            candidates = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_first_compiling(pipe, candidates))


def _first_compiling(pipe: Any, candidates: Sequence[tuple[Any, str]]) -> tuple[Any, ...]:
    """("ok", index of the first candidate that compiles) or ("refused", the last's words)."""
    from .structured import build_config

    cfg = pipe.get_generation_config()
    cfg.max_new_tokens = 1
    words = ""
    for i, (spec, _param) in enumerate(candidates):
        try:
            cfg.structured_output_config = build_config(spec)
            pipe.generate(_one_token(), cfg)
            return ("ok", i)
        except RuntimeError as e:
            words = why(e)
    return ("refused", words)


def _standin(model_dir: str, vocab_size: int) -> Any:
    """genai's LLMPipeline over a model of all-zero logits (the grammar alone picks the
    token) with the real tokenizer: what the real pipeline's grammar compiler would make."""
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai
    from openvino import opset13 as ops

    ids = ops.parameter([-1, -1], ov.Type.i64, name="input_ids")
    params = [
        ids,
        ops.parameter([-1, -1], ov.Type.i64, name="attention_mask"),
        ops.parameter([-1, -1], ov.Type.i64, name="position_ids"),
        ops.parameter([-1], ov.Type.i32, name="beam_idx"),
    ]
    zero = ops.multiply(ops.convert(ids, ov.Type.f32), ops.constant(np.float32(0)))
    wide = ops.constant(np.zeros((1, 1, vocab_size), np.float32))
    logits = ops.add(ops.unsqueeze(zero, ops.constant(np.int64(-1))), wide)
    logits.output(0).get_tensor().set_names({"logits"})
    model = ov.Model([logits], params, "ovchat-grammar-check")
    with tempfile.TemporaryDirectory() as d:
        xml = Path(d) / "m.xml"
        ov.save_model(model, xml, compress_to_fp16=False)
        text, weights = xml.read_text(), np.fromfile(xml.with_suffix(".bin"), np.uint8)
    cfg = ov_genai.GenerationConfig()
    cfg.max_new_tokens = 1
    tokenizer = ov_genai.Tokenizer(model_dir)
    return ov_genai.LLMPipeline(
        text, ov.Tensor(weights), tokenizer, "CPU", cfg, ATTENTION_BACKEND="SDPA"
    )


def _one_token() -> Any:
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    one = ov.Tensor(np.ones((1, 1), dtype=np.int64))
    return ov_genai.TokenizedInputs(one, one)
