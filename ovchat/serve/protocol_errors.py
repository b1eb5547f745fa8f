"""Errors in each protocol's own shape. The server builds every error in OpenAI's shape
(errors.py); a path of another protocol gets it rewritten here, by its prefix:

- Ollama (/api/…): `{"error": "<message>"}`;
- Anthropic (/v1/messages…): `{"type": "error", "error": {"type": "<kind>", "message": …}}`.

/tokenize and /detokenize (llama.cpp, vLLM) keep OpenAI's shape, as those servers do.
"""

from __future__ import annotations

from typing import Any

OLLAMA_PREFIX = "/api/"
ANTHROPIC_PREFIX = "/v1/messages"
# Anthropic's error types by status (its docs' list; 503 is its "overloaded").
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


def protocol(path: str) -> str:
    """ "ollama", "anthropic" or "openai": whose API `path` belongs to."""
    if path.startswith(OLLAMA_PREFIX):
        return "ollama"
    if path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/"):
        return "anthropic"
    return "openai"


def reshape(path: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """`body` (OpenAI's error shape) in the shape of the protocol `path` belongs to."""
    kind = protocol(path)
    if kind == "openai" or not isinstance(body.get("error"), dict):
        return body
    message = str(body["error"].get("message") or "error")
    if kind == "ollama":
        return {"error": message}
    fallback = "invalid_request_error" if status < 500 else "api_error"
    return {
        "type": "error",
        "error": {"type": ANTHROPIC_TYPES.get(status, fallback), "message": message},
    }


# The error bodies' JSON Schemas, for the OpenAPI document (openapi.py).
OLLAMA_ERROR_SCHEMA = {
    "title": "OllamaError",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
ANTHROPIC_ERROR_SCHEMA = {
    "title": "AnthropicError",
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
