"""Every knob of the server in one validated pydantic model, `ServerSettings`.

Each field has its type, default, description and limits here, once: `ovchat serve`'s flags
are generated from the fields (verbs/serve.py), a Ray config's args (ray_app.build_app) and
the command line go through the same `from_flags`, and Python code builds the model directly
(`ServerSettings(max_running=4)`): all three are checked by the same validators.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonDict

from ..engine import DEFAULT_DEVICE, DEFAULT_KV_CACHE_GB, DEFAULT_PREFILL_CHUNK, Engine
from ..engine.remote import EngineClient, open_client
from ..engine.vision import open_engine
from ..options import GenerationOptions
from .fairness import FAIR_RESERVE
from .modelspecs import ModelSpec, model_specs

__all__ = ["API_KEY_ENV", "ModelSpec", "ServerSettings", "explain"]

DEFAULT_HOST = "127.0.0.1"  # local only unless asked: there is no auth without an API key
DEFAULT_PORT = 8000
DEFAULT_MAX_RUNNING = 16  # requests decoded together (the batching pipeline's max_num_seqs)
DEFAULT_MAX_WAITING = 64  # requests queued for a slot; one more gets 429
DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: far above any prompt a small context window takes
DEFAULT_MAX_UPLOAD_BYTES = 25 << 20  # 25 MiB: audio uploads (/v1/audio/*), as OpenAI's limit
DEFAULT_MAX_AUDIO_SECONDS = 30 * 60.0  # the longest audio transcribed in one request
UPLOAD_PATHS = ("/v1/audio/",)  # the routes whose bodies are files (max_upload_bytes)
DEFAULT_READ_TIMEOUT = 30.0  # seconds for a request's headers, and again for its body
DEFAULT_MAX_CONNECTIONS = 256  # open connections; one more is answered 503 and closed
DEFAULT_GRAMMAR_TIMEOUT = 30.0  # seconds a request's grammar may take to compile
DEFAULT_MAX_LOADED = 2  # models in memory at once; the least recently used idle one unloads
API_KEY_ENV = "OVCHAT_API_KEY"
WARMUP_PROMPT = "Hello"  # raw text: one short prefill and one decode step
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}
# Inputs of `from_flags` that are not fields: they become `models` and `properties`.
SOURCES = ("model", "library", "property")
KEYS = {"properties": "property", "model_dir": "model", "models": "model"}
RAY: JsonDict = {
    "group": "ray"
}  # fields shown under the Ray Serve heading of `ovchat serve --help`


def _duration(value: Any) -> Any:
    """ "300", "300s", "5m", "1h" → seconds; numbers and None pass as they are."""
    if not isinstance(value, str):
        return value
    t = value.strip().lower()
    scale = DURATION_UNITS.get(t[-1:], 1)
    try:
        return float(t[:-1] if t[-1:] in DURATION_UNITS else t) * scale
    except ValueError:
        raise ValueError(f"{value!r} is not a duration, e.g. 300, 90s, 5m or 1h") from None


def _bounds(value: Any) -> Any:
    """ "MIN:MAX" → (MIN, MAX), checked; a pair passes on to the same check."""
    text = value if isinstance(value, str) else ":".join(map(str, value or ()))
    if value is None:
        return None
    low, _, high = text.partition(":")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = (-1, -1)
    if not 0 <= bounds[0] <= bounds[1] or bounds[1] < 1:
        raise ValueError(f"{text!r} is not MIN:MAX, e.g. 1:4")
    return bounds


def _properties(value: Any) -> Any:
    """OpenVINO properties: a dict, or KEY=VALUE strings (the command line's -p)."""
    if isinstance(value, Mapping):
        return dict(value)
    props: dict[str, str] = {}
    for item in [value] if isinstance(value, str) else value:
        key, sep, val = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not KEY=VALUE, e.g. NUM_STREAMS=1")
        props[key.strip()] = val.strip()
    return props


Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ServerSettings(BaseModel):
    """The server's settings. Build it directly, or from `ovchat serve` flags (`from_flags`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # What is served: `from_flags` fills these from the names of models (or the library).
    model_dir: Path | None = Field(
        None, description="the default model's export (None: create_app is given an engine)"
    )
    models: tuple[ModelSpec, ...] = Field(
        (), description="several models, the first the default; empty: model_dir alone"
    )
    max_loaded: int = Field(
        DEFAULT_MAX_LOADED,
        ge=1,
        description="models in memory at once; the least recently used idle one unloads",
    )
    keep_alive: Annotated[Positive | None, BeforeValidator(_duration)] = Field(
        None,
        description="unload a model idle this long (300, 5m, 1h; never)",
        json_schema_extra={"metavar": "TIME"},
    )
    # How it is reached.
    host: str = Field(DEFAULT_HOST, description="address to bind")
    port: int = Field(DEFAULT_PORT, description="port; 0: any free port")
    api_key: str | None = Field(
        None,
        description="require 'Authorization: Bearer KEY' or 'x-api-key: KEY' on /v1, /api and "
        f"/tokenize (better: set {API_KEY_ENV})",
    )
    # How much it takes on.
    max_running: int = Field(DEFAULT_MAX_RUNNING, ge=1, description="requests generating together")
    max_waiting: int = Field(
        DEFAULT_MAX_WAITING, ge=0, description="requests queued beyond those; more get 429"
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES, ge=1, description="larger request bodies get 413"
    )
    kv_cache_gb: Positive = Field(
        DEFAULT_KV_CACHE_GB, description="KV-cache pool shared by all requests, in GB"
    )
    prefill_chunk: int = Field(
        DEFAULT_PREFILL_CHUNK,
        ge=1,
        description="prompt tokens per engine step; long prompts are prefilled in chunks of "
        "this size between other requests' steps",
    )
    read_timeout: Positive = Field(
        DEFAULT_READ_TIMEOUT,
        description="seconds for a request's headers, and again for its body; then 408",
    )
    max_connections: int = Field(
        DEFAULT_MAX_CONNECTIONS, ge=1, description="open connections; more are answered 503"
    )
    # The engine. Their flags (-d, -p, --prompt-lookup) are shared with generate and chat.
    device: str = Field(DEFAULT_DEVICE, description="CPU, GPU, GPU.0, NPU, AUTO")
    properties: Annotated[dict[str, Any], BeforeValidator(_properties)] = Field(
        default_factory=dict, description="OpenVINO properties"
    )
    prompt_lookup: bool = Field(False, description="prompt-lookup decoding (Engine's)")
    # Ray Serve (ray_app.py): replicas of this server, each one loading its models once.
    ray: bool = Field(
        False,
        description="serve as a Ray Serve deployment (replicas, restarts)",
        json_schema_extra=RAY,
    )
    replicas: int | None = Field(
        None, ge=1, description="with `ray`: this many replicas (1)", json_schema_extra=RAY
    )
    autoscale: Annotated[tuple[int, int] | None, BeforeValidator(_bounds)] = Field(
        None,
        description="with `ray`: MIN to MAX replicas, on ongoing requests",
        json_schema_extra={"group": "ray", "metavar": "MIN:MAX"},
    )
    ray_address: str | None = Field(
        None,
        description="with `ray`: an existing cluster (e.g. auto, ray://head:10001); "
        "default: a local Ray instance",
        json_schema_extra={"group": "ray", "metavar": "ADDR"},
    )

    max_upload_bytes: int = Field(
        DEFAULT_MAX_UPLOAD_BYTES,
        ge=1,
        description="larger audio uploads (/v1/audio/*) get 413",
    )
    max_audio_seconds: Positive = Field(
        DEFAULT_MAX_AUDIO_SECONDS, description="longer audio gets 400"
    )
    allow_image_urls: bool = Field(
        False, description="fetch http(s) image URLs in requests (off: data: URLs only)"
    )
    engine_process: bool = Field(
        True,
        description="run each chat or vision model's engine in a process of its own, so that no "
        "engine step holds up /health or other requests (on; --no-engine-process: in the "
        "server's process)",
    )
    grammar_timeout: Positive = Field(
        DEFAULT_GRAMMAR_TIMEOUT,
        description="seconds a request's JSON schema or grammar may take to compile; then 400",
    )

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError(f"{value} is not a port number")
        return value

    @field_validator("replicas", "autoscale", "ray_address")
    @classmethod
    def _needs_ray(cls, value: Any, info: ValidationInfo) -> Any:
        # Messages name other fields in `backquotes`: explain() spells them for the reader.
        if value is not None and not info.data.get("ray"):
            raise ValueError("needs `ray`")
        if info.field_name == "autoscale" and value is not None and info.data.get("replicas"):
            raise ValueError("and `replicas` do not go together: choose one")
        return value

    @property
    def replica_count(self) -> int:
        """Replicas to start (autoscaling starts MIN, at least one)."""
        return max(self.autoscale[0], 1) if self.autoscale else self.replicas or 1

    def body_limit(self, path: str) -> int:
        """The largest body a request to `path` may send (uploads have their own limit)."""
        return self.max_upload_bytes if path.startswith(UPLOAD_PATHS) else self.max_body_bytes

    @staticmethod
    def api_key_from_env() -> str | None:
        return os.environ.get(API_KEY_ENV) or None

    @classmethod
    def from_flags(cls, values: Mapping[str, Any]) -> ServerSettings:
        """From `ovchat serve`'s flags, as parsed (argparse's names) or as a Ray config's
        args (the flags without their dashes): `model` (one or a list) and `library` become
        `models`, `property` (KEY=VALUE strings) `properties`; the API key falls back to
        $OVCHAT_API_KEY. Raises ValidationError (see `explain`) or the library's errors."""
        v = {k.replace("-", "_"): x for k, x in values.items()}
        model, library = v.pop("model", None), bool(v.pop("library", False))
        if "property" in v:
            v["properties"] = v.pop("property") or {}
        if v.get("api_key") is None:
            v["api_key"] = cls.api_key_from_env()
        v = {k: x for k, x in v.items() if x is not None}
        settings = cls.model_validate(v)  # the knobs first: a bad one is found before a model
        names = [model] if isinstance(model, str) else model
        specs = model_specs(names, library)
        return settings.model_copy(update={"model_dir": specs[0].path, "models": specs})

    def load_engine(self) -> Engine | EngineClient:
        """The server's engine: continuous batching, as many sequences as may run at once
        (in an engine process of its own with `engine_process`)."""
        if self.model_dir is None:
            raise ValueError("Settings.model_dir or an engine is needed")
        if self.engine_process:  # chat and vision-language models alike
            return open_client(
                self.model_dir,
                device=self.device,
                properties=self.properties,
                kv_cache_gb=self.kv_cache_gb,
                max_num_seqs=self.max_running + FAIR_RESERVE,
                prefill_chunk=self.prefill_chunk,
                prompt_lookup=self.prompt_lookup,
                warmup=WARMUP_PROMPT,
            )
        engine = open_engine(
            self.model_dir,
            device=self.device,
            properties=self.properties,
            backend="batching",
            kv_cache_gb=self.kv_cache_gb,
            max_num_seqs=self.max_running + FAIR_RESERVE,
            prefill_chunk=self.prefill_chunk,
            prompt_lookup=self.prompt_lookup,
        )
        # The first inference pays one-time setup (~0.5-1 s): pay it before "ready", not in
        # the first user's time to first token.
        engine.generate(WARMUP_PROMPT, GenerationOptions(max_new_tokens=1))
        return engine


def key(name: str) -> str:
    """A field's name as `ovchat serve` spells it, without the dashes (a Ray config's key)."""
    return KEYS.get(name) or name.replace("_", "-")


def explain(error: ValidationError, spell: Callable[[str], str]) -> str:
    """The first problem of a ValidationError as one line, each setting spelled by `spell`
    (a flag for the command line, a config key for Ray)."""
    e = error.errors(include_url=False)[0]
    field = str(e["loc"][0]) if e["loc"] else None
    name = spell(field) if field else "settings"
    ctx = e.get("ctx") or {}
    kind = e["type"]
    if kind == "value_error":
        reason = str(ctx.get("error", e["msg"]))
        for other in ServerSettings.model_fields:
            reason = reason.replace(f"`{other}`", spell(other))
    elif kind == "greater_than_equal":
        reason = "must be 0 or more" if ctx["ge"] == 0 else f"must be at least {ctx['ge']}"
    elif kind in ("greater_than", "finite_number"):
        reason = "must be a positive number"
    elif kind == "extra_forbidden":
        reason = "is not a setting of ovchat serve"
    else:
        given = e.get("input")
        reason = f"{given!r}: {e['msg'][:1].lower()}{e['msg'][1:]}"
    return f"{name} {reason}"
