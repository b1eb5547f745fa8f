"""Anthropic's request shape for POST /v1/messages (and count_tokens), mapped onto the same
messages, GenerationOptions and tools as the OpenAI endpoints.

Content blocks: text, tool_use (an assistant's call), tool_result (its result, in the next
user turn; each becomes a "tool" message), thinking (an earlier answer's reasoning: left out
of the prompt, as templates drop it), image (base64, or a URL when the server fetches
them: the same image path as OpenAI's image_url parts, serve/images.py; a text-only model
answers it with a 400 naming the block). Documents are refused (400 naming the block).

The system prompt loses the per-request header lines some clients put first (Claude Code's
`x-anthropic-billing-header: …`, different in every request): left in, they would change
the prompt's first tokens every time and no prefix would ever be reused from the KV cache.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator

from ...engine.tools import ToolSet, check_tools
from ...engine.vision import image_tag
from ...options import GenerationOptions, MaxNewTokens, TopK, TopP
from ..errors import APIError
from ..requestmodel import RequestModel
from ..schema_parts import StrictModel

STRICT = ConfigDict(extra="ignore", strict=True, populate_by_name=True)
# Per-request lines that must not reach the prompt (they vary; the model has no use for them).
HEADER_LINE = re.compile(r"^x-anthropic-[a-z-]+:[^\n]*(\n|$)", re.MULTILINE)
MAX_STOP_SEQUENCES = 16
UNSUPPORTED_BLOCKS = ("document", "search_result", "container_upload")
KNOWN_BLOCKS = ("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking")


class ImageSource(StrictModel):
    """An image block's source: base64 data with its media type, or a URL."""

    model_config = STRICT

    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None

    def as_url(self, where: str) -> str:
        """The image as a URL for serve/images.py (base64 → a data: URL)."""
        if self.type == "url":
            if not self.url:
                raise APIError(400, f"{where}: a url image source needs its url", param=where)
            return self.url
        if not self.data or not (self.media_type or "").startswith("image/"):
            raise APIError(
                400,
                f"{where}: a base64 image source needs data and an image/* media_type",
                param=where,
            )
        return f"data:{self.media_type};base64,{self.data}"


class Block(StrictModel):
    """One content block (its fields by type; unknown fields ignored)."""

    model_config = STRICT

    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None
    source: ImageSource | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v in UNSUPPORTED_BLOCKS:
            raise ValueError(f"{v} blocks are not supported: the served models read text")
        if v not in KNOWN_BLOCKS:
            raise ValueError(f"unknown content block type {v!r}")
        return v

    def plain(self) -> str:
        """The text of a text block, or of a tool_result's content."""
        if self.type == "text":
            return self.text or ""
        c = self.content
        if isinstance(c, list):
            return "".join(b.plain() for b in c if b.type == "text")
        return c or ""


class MessageIn(StrictModel):
    model_config = STRICT

    role: Literal["user", "assistant"]
    content: list[Block] | str  # the list first: its errors name the block

    def images(self) -> list[Block]:
        return (
            [b for b in self.content if b.type == "image"] if isinstance(self.content, list) else []
        )

    def as_dicts(self, first_image: int = 0) -> list[dict[str, Any]]:
        """This turn as the planner's messages: tool results first (as "tool" messages),
        then the text (an image block: its tag, engine/vision.py, numbered from
        `first_image` over the request); an assistant turn's calls as OpenAI-shaped
        tool_calls."""
        if isinstance(self.content, str):
            return [{"role": self.role, "content": self.content}]
        n = iter(range(first_image, first_image + len(self.content)))
        text = "".join(
            b.plain() if b.type == "text" else image_tag(next(n))
            for b in self.content
            if b.type in ("text", "image")
        )
        if self.role == "assistant":
            calls = [
                {"id": b.id or f"toolu_{i}", "type": "function",
                 "function": {"name": b.name or "", "arguments": b.input or {}}}
                for i, b in enumerate(self.content) if b.type == "tool_use"
            ]  # fmt: skip
            out: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                out["tool_calls"] = calls
            return [out]
        results = [
            {"role": "tool", "tool_call_id": b.tool_use_id or "",
             "content": ("Error: " if b.is_error else "") + b.plain()}
            for b in self.content if b.type == "tool_result"
        ]  # fmt: skip
        return [*results, *([{"role": "user", "content": text}] if text or not results else [])]


class ToolIn(StrictModel):
    model_config = STRICT

    name: str
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    type: str | None = None  # "custom"; Anthropic's server tools (web_search, …) are refused

    @field_validator("type")
    @classmethod
    def _custom(cls, v: str | None) -> str | None:
        if v not in (None, "custom"):
            raise ValueError(f"tool type {v!r} is not supported: only custom tools")
        return v


class ToolChoice(StrictModel):
    model_config = STRICT

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class Thinking(StrictModel):
    model_config = STRICT

    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(default=None, ge=1)


def clean_system(text: str) -> str:
    return HEADER_LINE.sub("", text).lstrip("\n")


class CountRequest(RequestModel, StrictModel):
    model_config = STRICT

    model: str | None = None
    messages: list[MessageIn] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None

    def system_text(self) -> str:
        s = self.system
        text = "\n".join(b.plain() for b in s if b.type == "text") if isinstance(s, list) else s
        return clean_system(text or "")

    def engine_prompt(self) -> list[dict[str, Any]]:
        system = self.system_text()
        msgs = [{"role": "system", "content": system}] if system else []
        seen = 0
        for m in self.messages:
            msgs += m.as_dicts(seen)
            seen += len(m.images())
        return msgs

    def image_parts(self) -> list[tuple[str, str]]:
        """(where, url) of every image block, in order: "messages[0].content[1]"; an image
        where no model reads one (the system prompt, a tool_result) is a 400 naming it."""
        for i, b in enumerate(self.system if isinstance(self.system, list) else ()):
            if b.type == "image":
                where = f"system[{i}]"
                raise APIError(400, f"{where}: images go in user messages", param=where)
        out = []
        for i, m in enumerate(self.messages):
            for j, b in enumerate(m.content if isinstance(m.content, list) else ()):
                where = f"messages[{i}].content[{j}]"
                inner = b.content if isinstance(b.content, list) else ()
                if any(c.type == "image" for c in inner):
                    raise APIError(
                        400, f"{where}: images in a tool_result are not supported", param=where
                    )
                if b.type == "image":
                    if b.source is None:
                        raise APIError(400, f"{where}: an image block needs its source",
                                       param=where)  # fmt: skip
                    out.append((where, b.source.as_url(where)))
        return out

    def tool_set(self) -> ToolSet | None:
        tools = [
            {"type": "function", "function": {"name": t.name, "description": t.description or "",
                                              "parameters": t.input_schema}}
            for t in self.tools or ()
        ]  # fmt: skip
        c = self.tool_choice
        choice: Any = None
        if c is not None:
            choice = {"auto": "auto", "any": "required", "none": "none"}.get(c.type)
            if c.type == "tool":
                choice = {"type": "function", "function": {"name": c.name or ""}}
        parallel = not (c and c.disable_parallel_tool_use)
        return check_tools(tools or None, choice, parallel)

    def thinks(self) -> bool | None:
        t = self.thinking
        return None if t is None or t.type == "adaptive" else t.type == "enabled"

    def reasoning_budget(self) -> int | None:
        t = self.thinking
        return t.budget_tokens if t is not None and t.type == "enabled" else None


class MessagesRequest(CountRequest):
    model: str | None = None  # Anthropic requires it; a server of one model may go without
    max_tokens: MaxNewTokens
    stop_sequences: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, max_length=MAX_STOP_SEQUENCES
    )
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None

    def budget(self) -> int | None:
        return self.max_tokens

    def options(self) -> GenerationOptions:
        return GenerationOptions(
            max_new_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k or None,
            stop=tuple(self.stop_sequences or ()),
        )

    def params(self) -> dict[str, str]:
        return {"max_new_tokens": "max_tokens", "prompt": "messages", "stop": "stop_sequences"}


def input_object(arguments: str) -> dict[str, Any]:
    """A call's arguments (JSON text) as tool_use's `input` (an answer cut inside the call:
    {})."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
