"""Every error the server sends, in OpenAI's shape: {"error": {"message", "type", "param",
"code"}}. Messages are about the request; internal detail (paths, signatures, addresses)
goes to the server log, never to the client."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ContextLengthError, OptionError
from .protocol_errors import reshape

log = logging.getLogger("ovchat.serve")
# pydantic puts union branches and validator names into error locations: not fields.
_NOT_FIELDS = {"str", "int", "float", "bool", "list", "dict", "none"}
ECHO_LIMIT = 200  # characters of a client's own text quoted back in an error message


class APIError(Exception):
    """An error answered as OpenAI does."""

    TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "invalid_request_error",
        405: "invalid_request_error",
        408: "invalid_request_error",
        413: "invalid_request_error",
        429: "rate_limit_error",
        500: "server_error",
        503: "server_error",
    }

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), self.status, headers=self.headers)

    @classmethod
    def from_option(cls, e: OptionError, params: dict[str, str] | None = None) -> APIError:
        """A library OptionError as a 400, its param spelled as the request spells it."""
        param = (params or {}).get(e.param or "", e.param)
        code = "context_length_exceeded" if isinstance(e, ContextLengthError) else "invalid_value"
        return cls(400, str(e), param=param, code=code)


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind = APIError.TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return _shaped(request, exc.body(), exc.status, exc.headers)

    @app.exception_handler(OptionError)
    async def option_error(request: Request, exc: OptionError) -> JSONResponse:
        e = APIError.from_option(exc)
        return _shaped(request, e.body(), e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _shaped(request, validation_body(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, code = exc.status_code, None
        message = str(exc.detail) if exc.detail else "error"
        if status == 404:
            message = f"no such endpoint: {request.method} {echo(request.url.path)}"
            code = "unknown_url"
        elif status == 405:
            message = f"{request.method} is not allowed on {echo(request.url.path)}"
            code = "method_not_allowed"
        elif status == 400 and exc.__cause__ is not None:
            # FastAPI could not read the body as JSON for a reason other than syntax.
            message, code = _body_error(exc.__cause__)
        return _shaped(request, error_body(status, message, code=code), status, exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _shaped(request, error_body(500, "internal error", code="internal_error"), 500)


def _shaped(
    request: Request, body: dict[str, Any], status: int, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The error in the shape of the protocol the path belongs to (protocol_errors.py)."""
    return JSONResponse(reshape(request.url.path, status, body), status, headers=headers)


def _body_error(cause: BaseException) -> tuple[str, str]:
    """Why a body could not be read as JSON (its syntax errors are RequestValidationErrors)."""
    if isinstance(cause, UnicodeDecodeError):
        return "the request body is not valid UTF-8 text", "invalid_encoding"
    if isinstance(cause, RecursionError):
        return "the request body's JSON is nested too deeply", "invalid_json"
    log.warning("unreadable request body: %r", cause)
    return "the request body could not be read as JSON", "invalid_json"


def echo(text: str, limit: int = ECHO_LIMIT) -> str:
    """A client's text quoted back in a message: valid UTF-8 (lone surrogates replaced) and
    short."""
    safe = text.encode("utf-8", "replace").decode("utf-8")
    return safe if len(safe) <= limit else safe[:limit] + "…"


def validation_body(exc: RequestValidationError) -> dict[str, Any]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    kind = first.get("type")
    if kind == "json_invalid":
        reason = first.get("ctx", {}).get("error", "invalid JSON")
        return error_body(
            400, f"We could not parse the JSON body of your request: {reason}", code="invalid_json"
        )
    param = _param(first.get("loc", ()))
    msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    if not param:
        text = "the request needs a JSON object body" + ("" if kind == "missing" else f": {msg}")
        return error_body(400, text, code="invalid_body")
    if kind == "missing":
        return error_body(
            400, f"'{param}' is required", param=param, code="missing_required_parameter"
        )
    return error_body(400, f"invalid '{param}': {msg}", param=param, code="invalid_value")


def _param(loc: Any) -> str:
    """("body", "messages", 0, "content", "str") -> "messages[0].content"."""
    out = ""
    for p in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(p, int):
            out += f"[{p}]"
        elif str(p).isidentifier() and str(p) not in _NOT_FIELDS:
            out += f".{p}" if out else str(p)
    return out
