"""/metrics under Ray Serve: every replica's ovchat metrics, each series labelled `replica`.

A request to /metrics reaches one replica, chosen by Serve's router; a scrape that saw a
different replica each time would see counters jump up and down. So each replica publishes
its registry to a small named Ray actor (the board) every PUSH_SECONDS, and /metrics on
any replica answers every live replica's series with a `replica` label: per replica as
they are, in aggregate with PromQL (`sum without (replica) (...)`). A replica that died
stops publishing and leaves the answer after STALE_SECONDS; its restart is a new replica
id, so its counters restart as a new series, as Prometheus expects.

Hand-written: Serve has no per-replica fan-out for HTTP routes, and Ray's own metrics
(`ray_serve_*`, on Ray's metrics export port) know requests and latencies, not tokens.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import ray
from prometheus_client import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from .metrics import CONTENT_TYPE

PUSH_SECONDS = 2.0
STALE_SECONDS = 10.0  # > PUSH_SECONDS several times over: a busy replica still counts
BOARD_NAMESPACE = "ovchat"
REPLICA_LABEL = "replica"


@ray.remote(num_cpus=0)
class MetricsBoard:
    """The latest metrics text of each replica of one Serve application."""

    def __init__(self) -> None:
        self.texts: dict[str, tuple[float, str]] = {}

    def put(self, replica: str, text: str) -> None:
        self.texts[replica] = (time.monotonic(), text)

    def drop(self, replica: str) -> None:
        self.texts.pop(replica, None)

    def live(self, max_age: float) -> dict[str, str]:
        now = time.monotonic()
        for replica in [r for r, (t, _) in self.texts.items() if now - t > max_age]:
            del self.texts[replica]
        return {r: text for r, (_, text) in sorted(self.texts.items())}


def board_name(app_name: str) -> str:
    return f"ovchat-metrics:{app_name}"


def board(app_name: str) -> Any:
    """The application's board, created by the first replica that asks. Detached: it must
    outlive any one replica (a killed one would take an owned actor with it); `ovchat serve
    --ray` kills it on the way out."""
    return MetricsBoard.options(  # type: ignore[attr-defined]
        name=board_name(app_name),
        namespace=BOARD_NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
    ).remote()


def kill_board(app_name: str) -> None:
    with contextlib.suppress(ValueError):  # there was none
        ray.kill(ray.get_actor(board_name(app_name), namespace=BOARD_NAMESPACE))


class MetricsFeed:
    """One replica's side: publish its own text, read everyone's."""

    def __init__(self, app_name: str, replica: str, render: Callable[[], bytes]) -> None:
        self.app_name = app_name
        self.replica = replica
        self.render = render
        self._board: Any = None

    async def _call(self, method: str, *args: Any) -> Any:
        if self._board is None:
            self._board = board(self.app_name)
        try:
            return await getattr(self._board, method).remote(*args)
        except Exception:
            self._board = None  # the board is gone (killed, its node lost): find it again
            raise

    async def push(self) -> None:
        await self._call("put", self.replica, self.render().decode())

    async def drop(self) -> None:
        await self._call("drop", self.replica)

    async def everyone(self) -> bytes:
        try:
            await self.push()  # this replica's own numbers are never stale
            texts = await self._call("live", STALE_SECONDS)
        except Exception:  # no board (being restarted): this replica's own, still labelled
            texts = {self.replica: self.render().decode()}
        return merge(texts)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def merge(texts: dict[str, str]) -> bytes:
    """Several replicas' Prometheus texts as one, each sample labelled with its replica."""
    families: dict[str, Metric] = {}
    for replica, text in texts.items():
        for fam in text_string_to_metric_families(text):
            out = families.get(fam.name)
            if out is None:
                out = families[fam.name] = Metric(fam.name, fam.documentation, fam.type)
            for s in fam.samples:
                labels = {**s.labels, REPLICA_LABEL: replica}
                out.add_sample(s.name, labels, s.value, s.timestamp, s.exemplar)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families.values())))
    return generate_latest(registry)


def replica_metrics_app(app: Any, feed: MetricsFeed) -> Any:
    """`app`, with GET /metrics answered for every replica (the rest goes to `app`)."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics" and scope["method"] == "GET":
            body = await feed.everyone()
            headers = [(b"content-type", CONTENT_TYPE.encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    asgi.state = app.state  # type: ignore[attr-defined]
    asgi.add_exception_handler = app.add_exception_handler  # type: ignore[attr-defined]
    return asgi
