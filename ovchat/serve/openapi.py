"""The OpenAPI document (/openapi.json) as the server really answers: errors are OpenAI's
shape with status 400 (never FastAPI's 422), and every status a request can get is listed.

FastAPI writes a 422 for every route with a body, and knows nothing of the statuses the
Guard, admission and the error handlers send; this rewrites its document once, on first use.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .guard import API_PREFIXES
from .metrics import CONTENT_TYPE
from .protocol_errors import ANTHROPIC_ERROR_SCHEMA, OLLAMA_ERROR_SCHEMA, protocol

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
# status → when the server sends it (for the endpoints that generate; others get fewer)
GENERATE_ERRORS = {
    "400": "invalid request: malformed JSON, a field out of range (param names it), a prompt "
    "longer than the context window",
    "401": "missing or wrong API key (only with --api-key)",
    "404": "unknown model",
    "408": "the request body did not arrive within --read-timeout",
    "413": "request body larger than --max-body-bytes",
    "429": "the queue is full (--max-waiting); see Retry-After",
    "500": "internal error (the detail is in the server log)",
    "503": "the model is loading or the server is shutting down; see Retry-After",
}
READ_ERRORS = {k: GENERATE_ERRORS[k] for k in ("401", "404", "500")}
STREAMED = ("/v1/chat/completions", "/v1/completions", "/v1/responses")
SSE = {
    "schema": {"type": "string"},
    "example": 'data: {"id": "chatcmpl-...", "choices": [...]}\n\ndata: [DONE]\n\n',
}
SCHEMA_NAMES = {"openai": "Error", "ollama": "OllamaError", "anthropic": "AnthropicError"}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas["Error"] = ERROR_SCHEMA
            schemas["OllamaError"] = OLLAMA_ERROR_SCHEMA
            schemas["AnthropicError"] = ANTHROPIC_ERROR_SCHEMA
            for path, ops in doc.get("paths", {}).items():
                for method, op in ops.items():
                    statuses = GENERATE_ERRORS if method == "post" else READ_ERRORS
                    _errors(op, statuses, SCHEMA_NAMES[protocol(path)])
                    if not path.startswith(API_PREFIXES):
                        op["responses"].pop("401", None)
            _media_types(doc.get("paths", {}))
            for name in ("HTTPValidationError", "ValidationError"):
                doc["components"]["schemas"].pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _errors(op: dict[str, Any], statuses: dict[str, str], schema: str = "Error") -> None:
    responses = op.setdefault("responses", {})
    responses.pop("422", None)
    ref = {"$ref": f"#/components/schemas/{schema}"}
    for status, when in statuses.items():
        entry: dict[str, Any] = {
            "description": when,
            "content": {"application/json": {"schema": ref}},
        }
        if status in ("429", "503"):
            entry["headers"] = RETRY_AFTER
        responses[status] = entry


def _media_types(paths: dict[str, Any]) -> None:
    """What FastAPI cannot see: /metrics is Prometheus text, and the generating endpoints
    answer `stream: true` with server-sent events."""
    metrics = paths.get("/metrics", {}).get("get", {}).get("responses", {}).get("200")
    if metrics is not None:
        metrics["description"] = "the metrics in Prometheus' text format"
        metrics["content"] = {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}
    for path in STREAMED:
        ok = paths.get(path, {}).get("post", {}).get("responses", {}).get("200")
        if ok is not None:
            ok["description"] = (
                "the answer: one JSON body, or with `stream: true` server-sent events "
                "(text/event-stream): one `data: {...}` event per chunk, then `data: [DONE]`"
            )
            ok.setdefault("content", {})["text/event-stream"] = SSE
