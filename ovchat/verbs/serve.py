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
from typing import get_args

from pydantic import ValidationError

from ..errors import OptionError
from ..serve.settings import SOURCES, ServerSettings, explain, key
from .cliargs import add_model_arguments, add_prompt_lookup_argument

# Fields whose flags are shared with generate and chat (cliargs), or that -m fills.
SHARED = {"model_dir", "models", "device", "properties", "prompt_lookup"}


def flag(name: str) -> str:
    """A ServerSettings field's flag: max_running → --max-running."""
    return "--" + key(name)


FLAGS = {name: flag(name) for name in ServerSettings.model_fields}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags: -m/-d/-p as for generate and chat, then one per ServerSettings field (its
    type, default and description are the field's), the Ray ones under their own heading."""
    add_model_arguments(p, many=True)
    p.add_argument("--library", action="store_true", help="serve every model of the library")
    ray = p.add_argument_group("Ray Serve (needs the ray extra: pip install 'ovchat[ray]')")
    for name, field in ServerSettings.model_fields.items():
        if name in SHARED:
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        group = ray if extra.get("group") == "ray" else p
        text = field.description or ""
        for other in ServerSettings.model_fields:
            text = text.replace(f"`{other}`", flag(other))
        if field.annotation is bool:  # on by default: --no-NAME turns it off
            action = argparse.BooleanOptionalAction if field.default else "store_true"
            group.add_argument(flag(name), action=action, default=field.default, help=text)
            continue
        # int and float flags are parsed by argparse; the rest (durations, MIN:MAX, text)
        # reach the field's own validator as text.
        types = [t for t in get_args(field.annotation) if t is not type(None)] or [field.annotation]
        kind = types[0] if len(types) == 1 and types[0] in (int, float) else None
        default = field.default
        if default is not None:
            text += " (%(default)g)" if kind is float else " (%(default)s)"
        group.add_argument(
            flag(name),
            type=kind or str,
            default=default,
            metavar=str(extra.get("metavar") or name.upper()),
            help=text,
        )
    add_prompt_lookup_argument(p)


def settings_from_args(a: argparse.Namespace) -> ServerSettings:
    """The parsed flags, validated by ServerSettings: a bad one is one line naming its flag."""
    names = {*ServerSettings.model_fields, *SOURCES}
    try:
        return ServerSettings.from_flags({k: v for k, v in vars(a).items() if k in names})
    except ValidationError as e:
        raise OptionError(explain(e, flag)) from None


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
    if settings.ray:
        return main_ray(settings)
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


def main_ray(settings: ServerSettings) -> int:
    try:
        from ..serve.ray_run import run
    except ImportError as e:
        raise OptionError(
            f"--ray needs Ray Serve ({e.name} is not installed)", "pip install 'ovchat[ray]'"
        ) from e
    return run(settings)
