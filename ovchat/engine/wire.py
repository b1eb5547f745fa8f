"""What crosses the pipe between the server's process and an engine process (enginecore.py).

Written by hand (the stdlib's multiprocessing gives the process and the pipe; no library of
the stack defines these messages): small frozen dataclasses, pickled by multiprocessing's
Connection. Only plain values cross: token ids, GenerationOptions, Chunks, EngineStatus and
errors as text — never a pipeline, a tokenizer or a genai config.

Parent → engine: `Submit` (a planned request), `Cancel` (its consumer left), `CancelAll`
(the server is stopping), `Stop` (close the engine and exit).
Engine → parent: `Ready` or `Failed` once, after loading; then lists of `Out` (a chunk),
`End` (exactly one per submitted request: finished, cancelled or failed) and `Status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ovchat.errors as errors

from .planner import Plan
from .types import Chunk, EngineStatus


@dataclass(frozen=True)
class EngineArgs:
    """What the engine process loads: Engine's arguments, batching backend."""

    model_dir: Path
    device: str
    properties: dict[str, Any]
    kv_cache_gb: float
    max_num_seqs: int
    prefill_chunk: int
    prompt_lookup: bool
    warmup: str | None  # a prompt generated once (1 token) before Ready, or None


@dataclass(frozen=True)
class WireError:
    """An exception as text: its class (kept when it is one of ovchat's errors) and words."""

    kind: str
    message: str
    hint: str | None = None
    param: str | None = None

    @classmethod
    def of(cls, e: BaseException) -> WireError:
        if isinstance(e, errors.OvchatError):
            return cls(type(e).__name__, e.message, e.hint, e.param)
        return cls(type(e).__name__, errors.reason(e) or type(e).__name__)

    def exception(self) -> Exception:
        """The error to raise in the parent: the same ovchat error class, else EngineError."""
        cls = getattr(errors, self.kind, None)
        if isinstance(cls, type) and issubclass(cls, errors.OvchatError):
            return cls(self.message, self.hint, param=self.param)
        return errors.EngineError(f"generation failed in the engine: {self.message}")


# -- parent → engine --------------------------------------------------------------------------
@dataclass(frozen=True)
class Submit:
    rid: int
    plan: Plan  # without genai's config: the engine process builds its own


@dataclass(frozen=True)
class Cancel:
    rid: int


@dataclass(frozen=True)
class CancelAll:
    pass


@dataclass(frozen=True)
class Stop:
    pass


# -- engine → parent --------------------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    load_seconds: float
    pid: int
    kv_pool_tokens: int | None  # tokens the engine's KV-cache pool holds (None: unknown)


@dataclass(frozen=True)
class Failed:
    error: WireError


@dataclass(frozen=True)
class Out:
    rid: int
    chunk: Chunk


@dataclass(frozen=True)
class End:
    rid: int
    error: WireError | None = None


@dataclass(frozen=True)
class Status:
    status: EngineStatus
