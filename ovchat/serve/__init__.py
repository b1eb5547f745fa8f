"""The HTTP server: an OpenAI-compatible API over one batching Engine, and a web chat page.

    app.py        create_app(settings, engine=None): the app factory (no globals)
    routes.py     the OpenAI endpoints: chat completions, completions, models
    schema.py     OpenAI's request shapes (pydantic), mapped onto GenerationOptions
    images.py     image parts: data: URLs (http(s) only if allowed), 400s naming the part
    requestmodel.py  the base of every request body: every string checked once
    streaming.py  one JSON body or server-sent events from the engine's Chunks
    assembler.py  the engine's Chunks → one answer per choice (text, tool calls, logprobs)
    writers.py    AnswerWriters: those answers as OpenAI's bodies and events
    admission.py  bounded admission: running slots, a FIFO queue, then 429
    guard.py      ASGI middleware: API key, body limit and deadline, request metrics
    errors.py     every error in OpenAI's shape
    openapi.py    the OpenAPI document as the server answers (400s, not 422s)
    server.py     uvicorn with a header deadline, a connection cap and a clean stop
    metrics.py    Prometheus metrics
    settings.py   ServerSettings: every knob, validated (pydantic); the CLI flags come from it
    modelspecs.py what is served: a ModelSpec per export, from names and the library
    static/       the chat page (HTML, CSS, JS; marked + DOMPurify vendored, no CDN)

`ovchat serve` (ovchat/verbs/serve.py) is the command line around it. FastAPI is imported
only when an app is made.
"""

from __future__ import annotations

from typing import Any

from .settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # The web stack (FastAPI, ~0.3 s to import) loads only when a server is really made.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
