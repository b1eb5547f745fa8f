"""Every knob of the server in one place: the CLI fills it, tests build it directly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import DEFAULT_DEVICE, DEFAULT_KV_CACHE_GB, DEFAULT_PREFILL_CHUNK, Engine
from ..options import GenerationOptions

DEFAULT_HOST = "127.0.0.1"  # local only unless asked: there is no auth without --api-key
DEFAULT_PORT = 8000
DEFAULT_MAX_RUNNING = 16  # requests decoded together (the batching pipeline's max_num_seqs)
DEFAULT_MAX_WAITING = 64  # requests queued for a slot; one more gets 429
DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: far above any prompt a small context window takes
DEFAULT_READ_TIMEOUT = 30.0  # seconds for a request's headers, and again for its body
DEFAULT_MAX_CONNECTIONS = 256  # open connections; one more is answered 503 and closed
DEFAULT_MAX_LOADED = 2  # models in memory at once; the least recently used idle one unloads
API_KEY_ENV = "OVCHAT_API_KEY"
WARMUP_PROMPT = "Hello"  # raw text: one short prefill and one decode step


@dataclass(frozen=True)
class ModelSpec:
    """One model a server serves: the id clients use, its export, other names it answers to."""

    id: str
    path: Path
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerSettings:
    model_dir: Path | None = None  # None: the engine is passed to create_app
    device: str = DEFAULT_DEVICE
    properties: dict[str, Any] = field(default_factory=dict)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    max_running: int = DEFAULT_MAX_RUNNING
    max_waiting: int = DEFAULT_MAX_WAITING
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    kv_cache_gb: float = DEFAULT_KV_CACHE_GB
    prefill_chunk: int = DEFAULT_PREFILL_CHUNK
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # Several models (the first is the default); empty: model_dir (or the engine) alone.
    models: tuple[ModelSpec, ...] = ()
    max_loaded: int = DEFAULT_MAX_LOADED
    keep_alive: float | None = None  # seconds idle before a model unloads (None: never)
    prompt_lookup: bool = False  # prompt-lookup decoding (Engine's prompt_lookup)
    allow_image_urls: bool = False  # fetch http(s) image URLs (off: data: URLs only)

    @staticmethod
    def api_key_from_env() -> str | None:
        return os.environ.get(API_KEY_ENV) or None

    def load_engine(self) -> Engine:
        """The server's engine: continuous batching, as many sequences as may run at once."""
        if self.model_dir is None:
            raise ValueError("Settings.model_dir or an engine is needed")
        from ..engine.vision import open_engine

        engine = open_engine(
            self.model_dir,
            device=self.device,
            properties=self.properties,
            backend="batching",
            kv_cache_gb=self.kv_cache_gb,
            max_num_seqs=self.max_running,
            prefill_chunk=self.prefill_chunk,
            prompt_lookup=self.prompt_lookup,
        )
        # The first inference pays one-time setup (~0.5-1 s): pay it before "ready", not in
        # the first user's time to first token.
        engine.generate(WARMUP_PROMPT, GenerationOptions(max_new_tokens=1))
        return engine
