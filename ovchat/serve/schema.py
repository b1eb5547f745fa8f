"""OpenAI's request and response shapes (the subset ovchat serves), as pydantic models.

The value rules (ranges, float32 limits, stop strings) are GenerationOptions' own types
(ovchat/options.py); `options()` maps a request onto GenerationOptions. Unknown request
fields are ignored, as OpenAI's API does; fields that would change the answer in a way
ovchat cannot honour are rejected with a 400 naming the field, rather than silently ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..options import (
    DEFAULT_MAX_NEW_TOKENS,
    GenerationOptions,
    MaxNewTokens,
    Penalty,
    Seed,
    Temperature,
    TopP,
)
from .requestmodel import RequestModel

MAX_STOP_STRINGS = 4  # as OpenAI
# Strict: "yes" is not a boolean and true is not a number (pydantic's lax mode takes both).
STRICT = ConfigDict(extra="ignore", strict=True)


class _Request(RequestModel):  # every request body derives from RequestModel (strings checked)
    model_config = STRICT

    model: str | None = None  # OpenAI requires it; ovchat serves one model, so it may be left out
    max_tokens: MaxNewTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: str | list[str] | None = None
    seed: Seed | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1)
    presence_penalty: Penalty | None = Field(default=None, ge=0, le=0)  # not yet supported
    frequency_penalty: Penalty | None = Field(default=None, ge=0, le=0)
    logprobs: bool | int | None = None
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

    @field_validator("logprobs")
    @classmethod
    def _logprobs(cls, v: bool | int | None) -> bool | int | None:
        if v:
            raise ValueError("logprobs are not supported by this server")
        return v

    def stop_tuple(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def budget(self) -> int | None:
        return self.max_tokens

    def budget_param(self) -> str:
        return "max_tokens"

    def options(self) -> GenerationOptions:
        """The request's sampling and stopping as GenerationOptions (validated there)."""
        return GenerationOptions(
            max_new_tokens=self.budget() or DEFAULT_MAX_NEW_TOKENS,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=self.stop_tuple(),
            ignore_eos=self.ignore_eos,
        )

    def params(self) -> dict[str, str]:
        """GenerationOptions field → this request's field (for errors' `param`)."""
        return {"max_new_tokens": self.budget_param(), "prompt": self.prompt_param()}

    def prompt_param(self) -> str:
        return "prompt"

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool = False


class TextPart(BaseModel):
    model_config = STRICT
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = STRICT
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def as_dict(self) -> dict[str, str]:
        text = (
            self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        )
        # "developer" is OpenAI's newer name for the system role; chat templates know "system".
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: MaxNewTokens | None = None
    tools: list[Any] | None = Field(default=None, max_length=0)
    response_format: ResponseFormat | None = None

    def budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def budget_param(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens else "max_tokens"

    def prompt_param(self) -> str:
        return "messages"

    def engine_prompt(self) -> list[dict[str, str]]:
        """The messages for the planner (through the chat template)."""
        return [m.as_dict() for m in self.messages]


class ResponseFormat(BaseModel):
    model_config = STRICT
    type: Literal["text"]


class CompletionRequest(_Request):
    prompt: str | list[str]
    echo: bool = Field(default=False, le=False)
    suffix: str | None = Field(default=None, max_length=0)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("exactly one prompt per request is supported")
        return v

    def engine_prompt(self) -> str:
        """The raw prompt for the planner (no chat template)."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


ChatRequest.model_rebuild()
CompletionRequest.model_rebuild()


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
