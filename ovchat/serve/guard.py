"""ASGI middleware in front of the app: API key (for /v1), body-size limit, body-read
timeout, and the requests-by-status metric.

Hand-written: Starlette has no body-read deadline, and the key must be checked before
FastAPI parses the body (else a malformed body without a key would be a 400, not a 401).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import APIError, log
from .metrics import Metrics
from .protocol_errors import reshape
from .settings import ServerSettings

OTHER_ENDPOINT = "other"  # the metrics' label for paths that match no route
# The API paths: key, metrics (OpenAI's /v1, Ollama's /api, llama.cpp's and vLLM's tokenizer)
API_PREFIXES = ("/v1/", "/api/", "/tokenize", "/detokenize")


class Guard:
    """API key (for /v1), body-size limit and read deadline, and requests-by-status metrics.

    The body (at most `max_body_bytes`, within `read_timeout` seconds) is read up front and
    replayed to the app, so chunked uploads are limited too; later receive() calls go to the
    server (disconnect detection).
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: ServerSettings,
        metrics: Metrics,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.routes = routes  # the app's own list: routes added later are seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        api = path.startswith(API_PREFIXES)
        status = {"code": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            error = self._check_key(scope) if api else None
            if error is None:
                body, error = await self._read_body(scope, receive)
            if error is not None:
                shaped = reshape(path, error.status, error.body())
                await JSONResponse(shaped, error.status, headers=error.headers)(
                    scope, receive, send_wrapper
                )
                return
            await self.app(scope, _replay(body, receive), send_wrapper)
        finally:
            if api:
                outcome = scope.get("ovchat_outcome") or str(status["code"] or 500)
                self.metrics.requests.labels(endpoint_label(self.routes, scope), outcome).inc()

    def _check_key(self, scope: Scope) -> APIError | None:
        key = self.settings.api_key
        if not key:
            return None
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, given = auth.partition(" ")
        # compared as bytes: compare_digest refuses str with non-ASCII characters (a 500)
        given_bytes = given.strip().encode("latin-1")
        if scheme.lower() == "bearer" and secrets.compare_digest(given_bytes, key.encode()):
            return None
        x_key = headers.get(b"x-api-key")  # Anthropic's header
        if x_key is not None:
            if secrets.compare_digest(x_key.strip(), key.encode("utf-8")):
                return None
            auth = auth or "x-api-key"
        if not auth:
            msg = "You didn't provide an API key: send it as 'Authorization: Bearer KEY'."
        else:
            msg = "Incorrect API key provided."
        return APIError(401, msg, code="invalid_api_key")

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, APIError | None]:
        limit = self.settings.body_limit(scope["path"])
        too_big = APIError(
            413, f"the request body is larger than {limit} bytes", code="request_too_large"
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return b"", too_big
        parts: list[bytes] = []
        size = 0
        # One deadline for the whole body: a client that sends part of it and stalls (or
        # trickles it byte by byte) is answered 408 and its connection closed.
        deadline = time.monotonic() + self.settings.read_timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                log.info("request body not received within %ss", self.settings.read_timeout)
                return b"", APIError(
                    408,
                    f"the request body did not arrive within {self.settings.read_timeout:g} s",
                    code="request_timeout",
                    headers={"Connection": "close"},
                )
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", too_big
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(parts), None


def endpoint_label(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The metrics' endpoint: the template of the /v1 route the path matches (whatever the
    method, so a 401 or 405 counts where it was aimed): /v1/models/{name}, never one series
    per id; paths that match no route are "other"."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            template = getattr(route, "path_format", "")
            return template if template.startswith(API_PREFIXES) else OTHER_ENDPOINT
    return OTHER_ENDPOINT


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
