"""`ovchat serve --ray`: the same FastAPI app (`create_app`) as a Ray Serve deployment.

Ray Serve does what ovchat should not write itself: replicas across nodes, autoscaling on
ongoing requests, health checks and restarts of failed replicas, an HTTP proxy in front.
Each replica builds the app from the settings once (`__serve_build_asgi_app__`, Serve's
late-bound ingress), so each loads its model once, in its own process, when it starts.

`build_app` is the application builder for Ray's config files (KubeRay's serveConfigV2,
`serve run ovchat.serve.ray_app:build_app`): its args are `ovchat serve`'s own flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pydantic import ValidationError
from ray import serve
from ray.serve import Application

from ..errors import OptionError
from .ray_metrics import PUSH_SECONDS, MetricsFeed, replica_metrics_app
from .settings import ServerSettings, explain, key

log = logging.getLogger("ovchat.serve")

DEPLOYMENT_NAME = "ovchat"
# Autoscaling: Serve adds a replica when the ongoing requests per replica average above the
# target, and removes one when they stay below it. 8 is half of ovchat's default 16 running
# slots (--max-running): a replica with a half-full batch still has room while one starts.
TARGET_ONGOING_REQUESTS = 8.0
UPSCALE_DELAY_S = 10.0  # a burst this long adds replicas (Ray's default: 30 s)
DOWNSCALE_DELAY_S = 60.0  # an idle spell this long removes them (Ray's default: 600 s)
# Ray's health check calls check_health; a replica failing it (or dead) is replaced.
HEALTH_CHECK_PERIOD_S = 5.0
HEALTH_CHECK_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_TIMEOUT_S = 10.0
REPLICA_CPUS = 1.0  # what Ray reserves per replica when it places them on nodes


def deployment_options(settings: ServerSettings) -> dict[str, Any]:
    """Serve's options for ovchat's deployment: fixed `replicas`, or `autoscale` (min, max).

    A replica accepts as many requests as ovchat's own admission does (running + waiting):
    beyond that Serve queues them at the proxy instead of ovchat answering 429.
    """
    opts: dict[str, Any] = {
        "max_ongoing_requests": settings.max_running + settings.max_waiting,
        "health_check_period_s": HEALTH_CHECK_PERIOD_S,
        "health_check_timeout_s": HEALTH_CHECK_TIMEOUT_S,
        "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_TIMEOUT_S,
        "ray_actor_options": {"num_cpus": REPLICA_CPUS},
    }
    if settings.autoscale is None:
        opts["num_replicas"] = settings.replica_count
    else:
        low, high = settings.autoscale
        opts["autoscaling_config"] = {
            "min_replicas": low,
            "initial_replicas": max(low, 1),
            "max_replicas": high,
            "target_ongoing_requests": TARGET_ONGOING_REQUESTS,
            "upscale_delay_s": UPSCALE_DELAY_S,
            "downscale_delay_s": DOWNSCALE_DELAY_S,
        }
    return opts


@serve.ingress()
class OvchatReplica:
    """One replica: one app from `create_app`, its models loaded once when it starts."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.feed: MetricsFeed | None = None
        self._pusher: asyncio.Task[None] | None = None

    def __serve_build_asgi_app__(self) -> Any:
        from .app import create_app

        app = create_app(self.settings)
        self.fastapi = app
        context = serve.get_replica_context()
        self.feed = MetricsFeed(context.app_name, context.replica_tag, app.state.metrics.render)
        self._pusher = asyncio.get_running_loop().create_task(self._push())
        return replica_metrics_app(app, self.feed)

    async def _push(self) -> None:
        """Publish this replica's metrics to the others (for every replica's /metrics)."""
        assert self.feed is not None
        while True:
            try:
                await self.feed.push()
            except Exception:  # the board restarting: try again next time
                log.warning("publishing this replica's metrics failed", exc_info=True)
            await asyncio.sleep(PUSH_SECONDS)

    def check_health(self) -> None:
        """Ray's health check: a replica whose default model is not loaded is replaced."""
        server = self.fastapi.state.server
        if not server.pool.started and not server.stopping:
            raise RuntimeError("the default model is not loaded")

    async def __del__(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(BaseException):
                await self._pusher
        if self.feed is not None:
            with contextlib.suppress(Exception):
                await self.feed.drop()


def application(settings: ServerSettings) -> Application:
    """The Serve application for `settings` (what `serve.run` deploys)."""
    deployment: Any = serve.deployment(OvchatReplica)
    opts = deployment_options(settings)
    return deployment.options(name=DEPLOYMENT_NAME, **opts).bind(settings)


def build_app(args: dict[str, Any]) -> Application:
    """Serve's application builder: `args` are `ovchat serve` flags without their dashes,
    e.g. {"model": "/models/smollm2", "max-running": 16, "replicas": 2} or
    {"model": [...], "autoscale": "1:4"}; ServerSettings checks them as it checks the CLI."""
    return application(settings_from_config(args))


def settings_from_config(args: dict[str, Any]) -> ServerSettings:
    """A Ray config's args → ServerSettings (with `ray` on); a bad one is one line naming it."""
    try:
        return ServerSettings.from_flags({**args, "ray": True})
    except ValidationError as e:
        raise OptionError(f"ovchat's Ray args: {explain(e, key)}") from None
