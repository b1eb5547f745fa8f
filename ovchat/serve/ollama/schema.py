"""Ollama's request shapes (its docs/api.md), mapped onto the same GenerationOptions, tools
and messages as the OpenAI endpoints: `options` (temperature, top_p, top_k, min_p,
num_predict, stop, seed, repeat_penalty, presence/frequency_penalty; num_ctx caps the
window), `format` ("json" or a JSON Schema: the same constrained path as response_format),
`tools`, `think`, `keep_alive`, `images` (base64 strings, for a vision model: the same image
path as OpenAI's image_url parts, serve/images.py; each message's images stand before its
text, as Ollama places them). Options ovchat has no use for (num_gpu, num_thread, …) are
ignored, as Ollama ignores what a runner does not use.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ...engine.structured import JSON_OBJECT_SCHEMA
from ...engine.tools import ToolSet, check_tools
from ...engine.vision import image_tag
from ...options import (
    DEFAULT_MAX_NEW_TOKENS,
    GenerationOptions,
    MinP,
    Penalty,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
)
from ..requestmodel import RequestModel
from ..schema_parts import StrictModel

LAX = ConfigDict(
    extra="ignore", strict=False, populate_by_name=True
)  # Ollama's clients send 1 for 1.0
DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_STOP = 16
UNLIMITED = 1 << 30  # num_predict -1: an answer budget the planner cuts to the window


class Options(StrictModel):
    model_config = LAX

    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    min_p: MinP | None = None
    num_predict: int | None = Field(default=None, ge=-2)  # -1: no limit, -2: fill the window
    stop: list[str] | None = Field(default=None, max_length=MAX_STOP)
    seed: int | None = None  # Ollama: -1 or absent is random
    repeat_penalty: RepetitionPenalty | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    num_ctx: int | None = Field(default=None, ge=1)

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: list[str] | None) -> list[str] | None:
        if v and any(not s for s in v):
            raise ValueError("stop sequences must not be empty")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int | None) -> int | None:
        return None if v is None or v < 0 else v


def base64_url(data: str) -> str:
    """An Ollama image (base64, no media type) as a data: URL for serve/images.py; the
    decoder reads the format from the bytes. A data: URL sent as is is taken as well."""
    return data if data.startswith("data:") else f"data:image/*;base64,{data}"


def keep_alive_seconds(value: float | str | None) -> float | None:
    """Ollama's keep_alive ("5m", "1h", 300, "0", -1) in seconds; None: the server's own;
    a negative duration: forever."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = DURATION.match(str(value).strip())
    if not m:
        raise ValueError(f"keep_alive {value!r} is not a duration such as 5m, 30s or -1")
    return float(m.group(1)) * UNITS[m.group(2)]


class _Generate(RequestModel, StrictModel):
    model_config = LAX

    model: str = Field(min_length=1)
    stream: bool = True
    format: Literal["", "json"] | dict[str, Any] | None = None
    # `options` in the body; `opts` here, as options() is what the planner calls
    opts: Options | None = Field(default=None, alias="options")
    keep_alive: float | str | None = None
    think: bool | Literal["high", "medium", "low"] | None = None
    images: list[str] | None = None

    @field_validator("keep_alive")
    @classmethod
    def _keep_alive(cls, v: float | str | None) -> float | str | None:
        keep_alive_seconds(v)
        return v

    def keep_alive_seconds(self) -> float | None:
        return keep_alive_seconds(self.keep_alive)

    def thinks(self) -> bool | None:
        """Whether to think (None: the template's default)."""
        return None if self.think is None else bool(self.think)

    def budget(self) -> int | None:
        o = self.opts
        return o.num_predict if o and o.num_predict and o.num_predict > 0 else None

    def options(self) -> GenerationOptions:
        o = self.opts or Options()
        constraint: dict[str, Any] = {}
        if self.format == "json":
            constraint = {"json_schema": JSON_OBJECT_SCHEMA}
        elif isinstance(self.format, dict):
            constraint = {"json_schema": json.dumps(self.format)}
        budget = self.budget() or DEFAULT_MAX_NEW_TOKENS
        if o.num_predict in (-1, -2):
            budget = UNLIMITED  # until the window is full (the planner cuts it to fit)
        return GenerationOptions(
            max_new_tokens=budget,
            temperature=o.temperature,
            top_p=o.top_p,
            top_k=o.top_k or None,
            min_p=o.min_p or None,
            repetition_penalty=o.repeat_penalty,
            presence_penalty=o.presence_penalty,
            frequency_penalty=o.frequency_penalty,
            seed=o.seed,
            stop=tuple(o.stop or ()),
            **constraint,
        )

    def tool_set(self) -> ToolSet | None:
        return None

    def params(self) -> dict[str, str]:
        """GenerationOptions field → this request's field (for errors)."""
        return {
            "max_new_tokens": "options.num_predict",
            "temperature": "options.temperature",
            "top_p": "options.top_p",
            "top_k": "options.top_k",
            "seed": "options.seed",
            "stop": "options.stop",
            "json_schema": "format",
            "prompt": self.prompt_param(),
        }

    def prompt_param(self) -> str:
        return "prompt"


class ToolCallIn(StrictModel):
    model_config = LAX

    class Function(StrictModel):
        model_config = LAX
        name: str
        arguments: dict[str, Any] | str = Field(default_factory=dict)

    function: Function
    id: str | None = None


class ChatMessage(StrictModel):
    model_config = LAX

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None

    def as_dict(self, first_image: int = 0) -> dict[str, Any]:
        """The message for the planner; its images' tags (engine/vision.py), numbered from
        `first_image` over the request, before its text."""
        tags = "".join(image_tag(first_image + k) for k in range(len(self.images or ())))
        out: dict[str, Any] = {"role": self.role, "content": tags + self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {"type": "function", "id": c.id or f"call_{i}",
                 "function": {"name": c.function.name, "arguments": c.function.arguments}}
                for i, c in enumerate(self.tool_calls)
            ]  # fmt: skip
        if self.role == "tool" and (self.tool_call_id or self.tool_name):
            out["tool_call_id"] = self.tool_call_id or self.tool_name
        return out


class ChatRequest(_Generate):
    messages: list[ChatMessage] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None

    def engine_prompt(self) -> list[dict[str, Any]]:
        out, seen = [], 0
        for m in self.messages:
            out.append(m.as_dict(seen))
            seen += len(m.images or ())
        return out

    def image_parts(self) -> list[tuple[str, str]]:
        """(where, url) of every image, in order: "messages[0].images[1]"."""
        return [
            (f"messages[{i}].images[{j}]", base64_url(data))
            for i, m in enumerate(self.messages)
            for j, data in enumerate(m.images or ())
        ]

    def tool_set(self) -> ToolSet | None:
        return check_tools(self.tools or None, "auto")

    def prompt_param(self) -> str:
        return "messages"


class GenerateRequest(_Generate):
    prompt: str = ""
    system: str | None = None
    suffix: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False

    @field_validator("suffix", "template")
    @classmethod
    def _unsupported(cls, v: str | None) -> str | None:
        if v:
            raise ValueError("is not supported: ovchat applies the model's own chat template")
        return v

    @field_validator("context")
    @classmethod
    def _no_context(cls, v: list[int] | None) -> list[int] | None:
        if v:
            raise ValueError("is not supported: send the conversation to /api/chat")
        return v

    def engine_prompt(self) -> str | list[dict[str, Any]]:
        prompt = "".join(image_tag(k) for k in range(len(self.images or ()))) + self.prompt
        if self.raw:
            return prompt
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return [*msgs, {"role": "user", "content": prompt}]

    def image_parts(self) -> list[tuple[str, str]]:
        """(where, url) of every image, in order: "images[0]"."""
        return [(f"images[{j}]", base64_url(data)) for j, data in enumerate(self.images or ())]


class EmbedRequest(RequestModel, StrictModel):
    model_config = LAX

    model: str = Field(min_length=1)
    input: str | list[str]
    truncate: bool = True
    options: dict[str, Any] | None = None
    keep_alive: float | str | None = None
    dimensions: int | None = Field(default=None, ge=1)

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class ModelRequest(RequestModel, StrictModel):
    """/api/show and /api/pull: a model's name (`name` is Ollama's older spelling)."""

    model_config = LAX

    model: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1)
    stream: bool = True
    insecure: bool = False
    verbose: bool = False

    @model_validator(mode="after")
    def _named(self) -> ModelRequest:
        if not (self.model or self.name):
            raise ValueError("model is required")
        return self

    def which(self) -> str:
        return str(self.model or self.name)
