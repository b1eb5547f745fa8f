"""Run ovchat's Serve application from the CLI: on a local Ray instance (started here and
stopped on the way out) or on an existing cluster (`address`), until SIGINT or SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

from .ray_app import DEPLOYMENT_NAME, application
from .ray_metrics import kill_board
from .ray_proxy import PROXY_CALLBACK, PROXY_CALLBACK_ENV
from .settings import ServerSettings

APP_NAME = "ovchat"
# The local instance: no dashboard (a web UI and ~150 MB nobody asked for); Ray's metrics
# agent still exports ray_serve_* metrics on this port if free (RAY_METRICS_PORT to choose).
DEFAULT_RAY_METRICS_PORT = 8080


def free_port(host: str) -> int:
    """A port free right now (Serve's proxy cannot be told "any port" and report it back)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_ray(address: str | None, replicas: int) -> None:
    import ray

    # Ray's proxy reads its middlewares from its environment; a local instance inherits ours.
    # An existing cluster must have been started with it (deploy/ray-service.yaml does).
    os.environ.setdefault(PROXY_CALLBACK_ENV, PROXY_CALLBACK)
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    cpus = max(os.cpu_count() or 1, replicas)  # each replica reserves one CPU (REPLICA_CPUS)
    port = metrics_port()
    ray.init(
        address="local",  # a new instance, never another process's (ray.init would join it)
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        _metrics_export_port=port,
    )
    print(f"ovchat serve: Ray's metrics at http://127.0.0.1:{port}/metrics", file=sys.stderr)


def metrics_port() -> int:
    """RAY_METRICS_PORT, else DEFAULT_RAY_METRICS_PORT if it is free, else any free port."""
    if "RAY_METRICS_PORT" in os.environ:
        return int(os.environ["RAY_METRICS_PORT"])
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", DEFAULT_RAY_METRICS_PORT))
            return DEFAULT_RAY_METRICS_PORT
        except OSError:
            pass
    return free_port("127.0.0.1")


def run(settings: ServerSettings) -> int:
    """Serve until a signal; the shell's exit status for it (128 + its number)."""
    import ray
    from ray import serve

    stop = threading.Event()
    caught: list[int] = []

    def on_signal(sig: int, frame: object) -> None:
        caught.append(sig)
        stop.set()

    before = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    port = settings.port or free_port(settings.host)
    replicas, autoscale, address = settings.replica_count, settings.autoscale, settings.ray_address
    start_ray(address, max(replicas, autoscale[1] if autoscale else 1))
    try:
        serve.start(http_options={"host": settings.host, "port": port})
        serve.run(
            application(settings),
            name=APP_NAME,
            route_prefix="/",
            blocking=False,
        )
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        count = f"{autoscale[0]}-{autoscale[1]}" if autoscale else str(replicas)
        names = ", ".join(s.id for s in settings.models) or str(settings.model_dir)
        print(
            f"ovchat serve: {names} ready at http://{host}:{port}/ "
            f"(Ray Serve, {count} replica(s) of '{DEPLOYMENT_NAME}')",
            flush=True,
        )
        stop.wait()
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        try:
            serve.delete(APP_NAME)
            kill_board(APP_NAME)
            if not address:
                serve.shutdown()
        finally:
            ray.shutdown()
            print("ovchat serve: stopped", file=sys.stderr, flush=True)
    return 128 + caught[0] if caught else 0
