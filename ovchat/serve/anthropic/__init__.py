"""Anthropic's Messages API on ovchat's server: POST /v1/messages and
/v1/messages/count_tokens (schema.py: requests; writer.py: answers and events; routes.py)."""

from .routes import add_anthropic_routes

__all__ = ["add_anthropic_routes"]
