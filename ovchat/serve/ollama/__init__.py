"""Ollama's native API on ovchat's server: /api/chat, /api/generate, /api/embed and the model
endpoints (schema.py: requests; writer.py: NDJSON answers; routes.py: the endpoints)."""

from .routes import add_ollama_routes

__all__ = ["add_ollama_routes"]
