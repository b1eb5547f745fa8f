"""`ovchat serve`: an OpenAI-compatible HTTP server (continuous batching) and a web chat page.

Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,
GET /metrics (Prometheus), and the chat page at /. The app itself is `ovchat.serve`.
"""

from __future__ import annotations

import argparse
import socket
import sys

from ..engine import DEFAULT_KV_CACHE_GB, DEFAULT_PREFILL_CHUNK
from ..errors import OptionError
from ..library import resolve
from ..serve.settings import (
    API_KEY_ENV,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RUNNING,
    DEFAULT_MAX_WAITING,
    DEFAULT_PORT,
    DEFAULT_READ_TIMEOUT,
    ServerSettings,
)
from .cliargs import add_model_arguments, properties_from_args

FLAGS = {"kv_cache_gb": "--kv-cache-gb", "prefill_chunk": "--prefill-chunk"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
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
    return ServerSettings(
        model_dir=resolve(a.model),
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
    )


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
    assert settings.model_dir is not None
    # Load before binding: a bad model or device is one line on stderr, not a server log.
    engine = settings.load_engine()
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{port}/"

    def ready() -> None:
        auth = " (API key required)" if settings.api_key else ""
        print(f"ovchat serve: {engine.info.name} ready at {url}{auth}", flush=True)

    app = create_app(settings, engine)
    server = Server(uvicorn_config(app, settings), app.state.server.stop_generating, ready)
    try:
        server.run(sockets=[sock])
    finally:
        engine.close()
        sock.close()
        print("ovchat serve: stopped", file=sys.stderr, flush=True)
    # Stopped by a signal: the shell's convention, 128 + its number (Ctrl-C 130, SIGTERM 143).
    return 128 + server.signal if server.signal else 0
