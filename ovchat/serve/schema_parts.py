"""The pieces OpenAI's request shapes share: the base class, content parts, tools and tool
calls, response formats, and why a field ovchat cannot honour is refused."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..engine.structured import JSON_OBJECT_SCHEMA

# Strict: "yes" is not a boolean and true is not a number (pydantic's lax mode takes both).
STRICT = ConfigDict(extra="ignore", strict=True, populate_by_name=True)

# Why each refused field is refused (the 400's message; the README lists them too).
REFUSED = {
    "logit_bias": "logit_bias is not supported: the engine has no per-token bias",
    "top_logprobs": (
        "top_logprobs above 1 is not supported: the engine reports only the chosen token's "
        "log-probability"
    ),
    "logprobs": (
        "logprobs above 1 is not supported: the engine reports only the chosen token's "
        "log-probability"
    ),
    "audio": "audio output is not supported: this server generates text",
    "functions": "functions is deprecated and not supported: use tools",
    "function_call": "function_call is deprecated and not supported: use tools and tool_choice",
    "web_search_options": "web search is not supported by a local model",
    "echo": "echo is not supported",
    "suffix": "suffix (insertion) is not supported",
    "best_of": "best_of other than n is not supported",
    "previous_response_id": "previous_response_id is not supported: this server stores nothing",
    "conversation": "conversation is not supported: this server stores nothing",
    "background": "background responses are not supported: this server stores nothing",
    "prompt": "stored prompts are not supported: this server stores nothing",
    "include": "include is not supported",
}


def refused(name: str) -> ValueError:
    return ValueError(REFUSED[name])


class StrictModel(BaseModel):
    """The base of every request shape: strict types, unknown fields ignored."""

    model_config = STRICT


class StreamOptions(StrictModel):
    include_usage: bool = False


class TextPart(StrictModel):
    type: Literal["text"]
    text: str


class ImageURL(StrictModel):
    url: str  # a data: URL (or http(s) when the server allows fetching: serve/images.py)
    detail: Literal["auto", "low", "high"] | None = None  # the model's processor decides


class ImagePart(StrictModel):
    type: Literal["image_url"]
    image_url: ImageURL


# -- tools -----------------------------------------------------------------------------------
class FunctionDef(StrictModel):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None  # the call is always constrained to `parameters`


class ToolDef(StrictModel):
    type: Literal["function"]
    function: FunctionDef


class FunctionName(StrictModel):
    name: str


class NamedToolChoice(StrictModel):
    type: Literal["function"]
    function: FunctionName


class FunctionCall(StrictModel):
    name: str
    arguments: str


class ToolCallIn(StrictModel):
    """A call in an earlier assistant message, sent back with the conversation."""

    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


# -- response formats -----------------------------------------------------------------------
class JsonSchemaFormat(StrictModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | bool | None = Field(default=None, alias="schema")
    strict: bool | None = None  # the answer is always constrained to the schema


class ResponseFormat(StrictModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _complete(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("the json_schema format needs its json_schema")
        return self

    def constraint(self) -> dict[str, Any]:
        """The GenerationOptions field for this format."""
        if self.type == "json_object":
            return {"json_schema": JSON_OBJECT_SCHEMA}
        if self.type == "json_schema" and self.json_schema is not None:
            schema = self.json_schema.schema_
            return {"json_schema": JSON_OBJECT_SCHEMA if schema is None else schema}
        return {}
