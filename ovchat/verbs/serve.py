"""`ovchat serve`: an OpenAI-compatible HTTP server (continuous batching) and a web chat page.

Endpoints: POST /v1/chat/completions, POST /v1/completions, POST /v1/responses,
POST /v1/embeddings, GET /v1/models, GET /health, GET /metrics (Prometheus), and the chat
page at /. Several models (`-m a -m b`, or `--library`) load on first use; the request's
`model` picks one. The app itself is `ovchat.serve`.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from ..engine import DEFAULT_KV_CACHE_GB, DEFAULT_PREFILL_CHUNK
from ..errors import ModelNotFoundError, OptionError
from ..library import lookup
from ..library.store import list_entries
from ..modeldir import model_kind, read_model_info
from ..serve.settings import (
    API_KEY_ENV,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_LOADED,
    DEFAULT_MAX_RUNNING,
    DEFAULT_MAX_WAITING,
    DEFAULT_PORT,
    DEFAULT_READ_TIMEOUT,
    ModelSpec,
    ServerSettings,
)
from .cliargs import add_model_arguments, add_prompt_lookup_argument, properties_from_args

FLAGS = {
    "kv_cache_gb": "--kv-cache-gb",
    "prefill_chunk": "--prefill-chunk",
    "keep_alive": "--keep-alive",
    "max_loaded": "--max-loaded",
}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p, many=True)
    p.add_argument("--library", action="store_true", help="serve every model of the library")
    p.add_argument("--max-loaded", type=int, default=DEFAULT_MAX_LOADED,
                   help="models in memory at once (%(default)s); the least recently used "
                   "idle one unloads")  # fmt: skip
    p.add_argument(
        "--keep-alive", metavar="TIME", help="unload a model idle this long (300, 5m, 1h; never)"
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind ({DEFAULT_HOST})")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (%(default)s; 0: any free port)"
    )
    p.add_argument(
        "--api-key", help=f"require 'Authorization: Bearer KEY' on /v1 (better: set {API_KEY_ENV})"
    )
    p.add_argument("--max-running", type=int, default=DEFAULT_MAX_RUNNING,
                   help="requests generating together (%(default)s)")  # fmt: skip
    p.add_argument("--max-waiting", type=int, default=DEFAULT_MAX_WAITING,
                   help="requests queued beyond those (%(default)s); more get 429")  # fmt: skip
    p.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                   help="larger request bodies get 413 (%(default)s)")  # fmt: skip
    p.add_argument("--kv-cache-gb", type=float, default=DEFAULT_KV_CACHE_GB,
                   help="KV-cache pool shared by all requests, in GB (%(default)g)")  # fmt: skip
    p.add_argument("--prefill-chunk", type=int, default=DEFAULT_PREFILL_CHUNK,
                   help="prompt tokens per engine step; long prompts are prefilled in "
                   "chunks of this size between other requests' steps (%(default)s)")  # fmt: skip
    p.add_argument("--read-timeout", type=float, default=DEFAULT_READ_TIMEOUT,
                   help="seconds for a request's headers, and again for its body; then 408 "
                   "(%(default)g)")  # fmt: skip
    p.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                   help="open connections; more are answered 503 (%(default)s)")  # fmt: skip
    add_ray_arguments(p)
    add_prompt_lookup_argument(p)
    p.add_argument("--allow-image-urls", action="store_true",
                   help="fetch http(s) image URLs in requests (off: data: URLs only)")  # fmt: skip


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Ray Serve (needs the ray extra: pip install 'ovchat[ray]')")
    g.add_argument(
        "--ray", action="store_true", help="serve as a Ray Serve deployment (replicas, restarts)"
    )
    g.add_argument("--replicas", type=int, help="with --ray: this many replicas (1)")
    g.add_argument("--autoscale", metavar="MIN:MAX",
                   help="with --ray: MIN to MAX replicas, on ongoing requests")  # fmt: skip
    g.add_argument("--ray-address", metavar="ADDR",
                   help="with --ray: an existing cluster (e.g. auto, ray://head:10001); "
                   "default: a local Ray instance")  # fmt: skip


def ray_args(a: argparse.Namespace) -> tuple[int, tuple[int, int] | None]:
    """--replicas and --autoscale, checked: (replicas, (min, max) or None)."""
    if not a.ray:
        for flag in ("replicas", "autoscale", "ray_address"):
            if getattr(a, flag) is not None:
                raise OptionError(f"--{flag.replace('_', '-')} needs --ray")
        return 1, None
    if a.replicas is not None and a.autoscale is not None:
        raise OptionError("--replicas and --autoscale do not go together", "choose one")
    if a.autoscale is None:
        if a.replicas is not None and a.replicas < 1:
            raise OptionError("--replicas must be at least 1")
        return a.replicas or 1, None
    low, _, high = a.autoscale.partition(":")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = (-1, -1)
    if not 0 <= bounds[0] <= bounds[1] or bounds[1] < 1:
        raise OptionError(f"--autoscale {a.autoscale!r} is not MIN:MAX", "e.g. --autoscale 1:4")
    return 1, bounds


def ray_settings_from_mapping(
    args: dict[str, Any],
) -> tuple[ServerSettings, int, tuple[int, int] | None]:
    """A Ray config file's args (`ovchat serve` flags without dashes) → what --ray takes."""
    argv = ["--ray"]
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        for v in value if isinstance(value, list) else [value]:
            if v is True:
                argv.append(flag)
            elif v not in (False, None):
                argv += [flag, str(v)]
    p = argparse.ArgumentParser(prog="ovchat serve", exit_on_error=False)
    add_arguments(p)
    try:
        a, unknown = p.parse_known_args(argv)
    except argparse.ArgumentError as e:
        raise OptionError(f"ovchat's Ray args: {e}") from e
    if unknown:
        raise OptionError(f"ovchat's Ray args: unknown {' '.join(unknown)}")
    replicas, autoscale = ray_args(a)
    return settings_from_args(a), replicas, autoscale


def settings_from_args(a: argparse.Namespace) -> ServerSettings:
    for name in ("max_running", "max_body_bytes", "prefill_chunk", "max_connections"):
        if getattr(a, name) < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be at least 1")
    if a.max_waiting < 0:
        raise OptionError("--max-waiting must be 0 or more")
    for name in ("kv_cache_gb", "read_timeout"):
        value = getattr(a, name)
        if not (value > 0 and value < float("inf")):  # also refuses nan
            raise OptionError(f"--{name.replace('_', '-')} must be a positive number")
    if not 0 <= a.port <= 65535:
        raise OptionError(f"--port {a.port} is not a port number")
    if a.max_loaded < 1:
        raise OptionError("--max-loaded must be at least 1")
    specs = model_specs(a.model, a.library)
    return ServerSettings(
        model_dir=specs[0].path,
        models=specs,
        max_loaded=a.max_loaded,
        keep_alive=duration(a.keep_alive),
        device=a.device,
        properties=properties_from_args(a),
        host=a.host,
        port=a.port,
        api_key=a.api_key or ServerSettings.api_key_from_env(),
        max_running=a.max_running,
        max_waiting=a.max_waiting,
        max_body_bytes=a.max_body_bytes,
        kv_cache_gb=a.kv_cache_gb,
        prefill_chunk=a.prefill_chunk,
        read_timeout=a.read_timeout,
        max_connections=a.max_connections,
        prompt_lookup=a.prompt_lookup,
        allow_image_urls=a.allow_image_urls,
    )


def duration(text: str | None) -> float | None:
    """ "300", "300s", "5m", "1h" → seconds; None stays None."""
    if text is None:
        return None
    t = text.strip().lower()
    scale = DURATION_UNITS.get(t[-1:], 1)
    try:
        value = float(t[:-1] if t[-1:] in DURATION_UNITS else t) * scale
    except ValueError:
        value = -1
    if not 0 < value < float("inf"):
        raise OptionError(f"--keep-alive {text!r} is not a duration", "e.g. 300, 90s, 5m or 1h")
    return value


def model_specs(models: list[str] | None, library: bool) -> tuple[ModelSpec, ...]:
    """What the server serves: each -m (a library name or a path; none: the default model),
    then with `library` every library model. Names that reach the same export are one
    model answering to all of them; its id is its library name:tag (else its own name)."""
    wanted: list[str | None] = list(models or [])
    if library:
        # Chat models first: with no -m, the first one is the default (the web page's).
        entries = sorted(list_entries(), key=lambda e: (model_kind(e.dir) != "chat", e.ref))
        refs = [e.ref for e in entries]
        if not refs:
            raise ModelNotFoundError("the library is empty", "add a model: ovchat pull SOURCE NAME")
        wanted += refs
    specs: dict[Path, ModelSpec] = {}
    for name in wanted or [None]:
        found = lookup(name)
        info = read_model_info(found.path)
        aliases = {info.name, found.path.name, *([name] if name else [])}
        if found.ref:
            base = found.ref.split(":")[0]
            if lookup(base).path == found.path:  # the name's default tag
                aliases.add(base)
        old = specs.get(found.path)
        if old is not None:
            specs[found.path] = ModelSpec(old.id, old.path, tuple(sorted({*old.aliases, *aliases})))
            continue
        ident = found.ref or info.name
        specs[found.path] = ModelSpec(ident, found.path, tuple(sorted(aliases - {ident})))
    return tuple(specs.values())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OptionError(
            f"cannot listen on {host}:{port}: {e.strerror}", "choose another --port or --host"
        ) from e
    sock.set_inheritable(True)
    return sock


def main(args: argparse.Namespace) -> int:
    from ..serve.app import create_app
    from ..serve.server import Server, uvicorn_config

    settings = settings_from_args(args)
    replicas, autoscale = ray_args(args)
    if args.ray:
        return main_ray(settings, replicas, autoscale, args.ray_address)
    app = create_app(settings)
    pool = app.state.server.pool
    # Load the default model before binding: a bad model or device is one line on stderr,
    # not a server log. The others load on first use.
    pool.preload()
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{port}/"

    def ready() -> None:
        pool.set_url(url)
        auth = " (API key required)" if settings.api_key else ""
        names = ", ".join(s.id for s in pool.served)
        print(f"ovchat serve: {names} ready at {url}{auth}", flush=True)

    server = Server(uvicorn_config(app, settings), app.state.server.stop_generating, ready)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        print("ovchat serve: stopped", file=sys.stderr, flush=True)
    # Stopped by a signal: the shell's convention, 128 + its number (Ctrl-C 130, SIGTERM 143).
    return 128 + server.signal if server.signal else 0


def main_ray(
    settings: ServerSettings, replicas: int, autoscale: tuple[int, int] | None, address: str | None
) -> int:
    try:
        from ..serve.ray_run import run
    except ImportError as e:
        raise OptionError(
            f"--ray needs Ray Serve ({e.name} is not installed)", "pip install 'ovchat[ray]'"
        ) from e
    return run(settings, replicas, autoscale, address)
