"""OpenAI's request shapes for /v1/chat/completions and /v1/completions, as pydantic models
(/v1/responses: responses_schema.py; tools and response formats: schema_parts.py).

The value rules (ranges, float32 limits, stop strings, n) are GenerationOptions' own types
(ovchat/options.py); `options()` maps a request onto GenerationOptions, `tool_set()` onto the
engine's tools. Unknown request fields are ignored, as OpenAI's API does; fields that would
change the answer in a way ovchat cannot honour are rejected with a 400 naming the field,
rather than silently ignored (README: "Endpoints" lists every field).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ..engine.tools import ToolSet, check_tools
from ..engine.vision import image_tag
from ..options import (
    DEFAULT_MAX_NEW_TOKENS,
    Choices,
    GenerationOptions,
    MaxNewTokens,
    Penalty,
    Seed,
    Temperature,
    TopP,
)
from .requestmodel import RequestModel
from .schema_parts import (
    ImagePart,
    NamedToolChoice,
    ResponseFormat,
    StreamOptions,
    StrictModel,
    TextPart,
    ToolCallIn,
    ToolDef,
    refused,
)

MAX_STOP_STRINGS = 4  # as OpenAI
MAX_TOP_LOGPROBS = 1  # genai reports the chosen token's log-probability only


class _Request(RequestModel, StrictModel):  # a request body: strings checked (RequestModel)
    model: str | None = None  # OpenAI requires it; ovchat serves one model, so it may be left out
    max_tokens: MaxNewTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: str | list[str] | None = None
    seed: Seed | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Choices = 1
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Any] | None = None
    user: str | None = None
    ignore_eos: bool = False  # vLLM's extension: decode exactly max_tokens (benchmarks)

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        items = [v] if isinstance(v, str) else (v or [])
        if len(items) > MAX_STOP_STRINGS:
            raise ValueError(f"at most {MAX_STOP_STRINGS} stop sequences")
        if any(not s for s in items):
            raise ValueError("stop sequences must not be empty")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v:
            raise refused("logit_bias")
        return v

    def stop_tuple(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def budget(self) -> int | None:
        return self.max_tokens

    def budget_param(self) -> str:
        return "max_tokens"

    def wants_logprobs(self) -> bool:
        return False

    def constraint(self) -> dict[str, str]:
        """The GenerationOptions constraint field this request asks for (json_schema, ...)."""
        return {}

    def options(self) -> GenerationOptions:
        """The request's sampling and stopping as GenerationOptions (validated there)."""
        return GenerationOptions(
            max_new_tokens=self.budget() or DEFAULT_MAX_NEW_TOKENS,
            temperature=self.temperature,
            top_p=self.top_p,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            seed=self.seed,
            stop=self.stop_tuple(),
            ignore_eos=self.ignore_eos,
            n=self.n,
            logprobs=self.wants_logprobs(),
            **self.constraint(),
        )

    def tool_set(self) -> ToolSet | None:
        return None

    def params(self) -> dict[str, str]:
        """GenerationOptions field → this request's field (for errors' `param`)."""
        return {"max_new_tokens": self.budget_param(), "prompt": self.prompt_param()}

    def prompt_param(self) -> str:
        return "prompt"

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class Message(StrictModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Annotated[TextPart | ImagePart, Field(discriminator="type")]] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    refusal: str | None = None  # an earlier answer's refusal, sent back: read as its text
    function_call: dict[str, Any] | None = None  # deprecated

    @field_validator("function_call")
    @classmethod
    def _no_function_call(cls, v: Any) -> Any:
        if v is not None:
            raise refused("function_call")
        return v

    def images(self) -> list[ImagePart]:
        return [p for p in self.content or () if isinstance(p, ImagePart)]

    def as_dict(self, first_image: int = 0) -> dict[str, Any]:
        """The message for the planner (engine/planner.py checks the rest); an image part is
        its tag (engine/vision.py), numbered from `first_image` over the request."""
        content = self.content
        if isinstance(content, list):
            n = iter(range(first_image, first_image + len(content)))
            content = "".join(
                p.text if isinstance(p, TextPart) else image_tag(next(n)) for p in content
            )
        if content is None and self.refusal:
            content = self.refusal
        # "developer" is OpenAI's newer name for the system role; chat templates know "system".
        out: dict[str, Any] = {
            "role": "system" if self.role == "developer" else self.role,
            "content": content,
        }
        if self.tool_calls:
            out["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: MaxNewTokens | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0)
    tools: list[ToolDef] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None
    # reasoning models: effort "none" (or vLLM's chat_template_kwargs.enable_thinking false)
    # turns the template's thinking off
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    thinking_budget: int | None = Field(default=None, ge=1)  # reasoning tokens at most
    # OpenAI features ovchat does not have: refused when asked for, rather than ignored
    audio: dict[str, Any] | None = None
    modalities: list[str] | None = None
    functions: list[Any] | None = None
    function_call: Any = None
    web_search_options: dict[str, Any] | None = None

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None:
            if not info.data.get("logprobs"):
                raise ValueError("top_logprobs needs logprobs: true")
            if v > MAX_TOP_LOGPROBS:
                raise refused("top_logprobs")
        return v

    @field_validator("modalities")
    @classmethod
    def _text_only(cls, v: list[str] | None) -> list[str] | None:
        if v and "audio" in v:
            raise refused("audio")
        return v

    @field_validator("audio", "functions", "function_call", "web_search_options")
    @classmethod
    def _not_supported(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None:
            raise refused(str(info.field_name))
        return v

    def budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def reasoning_budget(self) -> int | None:
        return self.thinking_budget

    def thinks(self) -> bool | None:
        switch = (self.chat_template_kwargs or {}).get("enable_thinking")
        if isinstance(switch, bool):
            return switch
        return None if self.reasoning_effort is None else self.reasoning_effort != "none"

    def budget_param(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens else "max_tokens"

    def prompt_param(self) -> str:
        return "messages"

    def wants_logprobs(self) -> bool:
        return bool(self.logprobs)

    def constraint(self) -> dict[str, str]:
        return self.response_format.constraint() if self.response_format else {}

    def tool_set(self) -> ToolSet | None:
        tools = [t.model_dump(exclude_none=True) for t in self.tools or ()]
        choice = self.tool_choice
        named = choice.model_dump() if isinstance(choice, NamedToolChoice) else choice
        return check_tools(tools, named, self.parallel_tool_calls)

    def params(self) -> dict[str, str]:
        return {**super().params(), "json_schema": "response_format"}

    def engine_prompt(self) -> list[dict[str, Any]]:
        """The messages for the planner (through the chat template)."""
        out, seen = [], 0
        for m in self.messages:
            out.append(m.as_dict(seen))
            seen += len(m.images())
        return out

    def image_parts(self) -> list[tuple[str, str]]:
        """(where, url) of every image part, in order: "messages[0].content[1]"."""
        return [
            (f"messages[{i}].content[{j}]", p.image_url.url)
            for i, m in enumerate(self.messages)
            for j, p in enumerate(m.content if isinstance(m.content, list) else ())
            if isinstance(p, ImagePart)
        ]


class CompletionRequest(_Request):
    prompt: str | list[str]
    logprobs: int | None = Field(default=None, ge=0)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(default=None, ge=1)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("exactly one prompt per request is supported")
        return v

    @field_validator("logprobs")
    @classmethod
    def _logprobs(cls, v: int | None) -> int | None:
        if v is not None and v > MAX_TOP_LOGPROBS:
            raise refused("logprobs")
        return v

    @field_validator("echo", "suffix")
    @classmethod
    def _not_supported(cls, v: Any, info: ValidationInfo) -> Any:
        if v:
            raise refused(str(info.field_name))
        return v

    @field_validator("best_of")
    @classmethod
    def _best_of(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and v != info.data.get("n", 1):
            raise refused("best_of")
        return v

    def wants_logprobs(self) -> bool:
        return self.logprobs is not None

    def engine_prompt(self) -> str:
        """The raw prompt for the planner (no chat template)."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


# -- responses (plain dicts: the shapes are OpenAI's, written out where they are built) -----
def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
