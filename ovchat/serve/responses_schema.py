"""OpenAI's Responses API request (POST /v1/responses), stateless: the input (a string or a
list of items), instructions, tools and text format map onto the same planner and options
as a chat request. Stored state (previous_response_id, conversation, background) is refused:
this server keeps nothing between requests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ..engine.tools import ToolSet, check_tools
from ..engine.vision import image_tag
from ..options import DEFAULT_MAX_NEW_TOKENS, GenerationOptions, MaxNewTokens, Temperature, TopP
from .requestmodel import RequestModel
from .schema_parts import JSON_OBJECT_SCHEMA, StrictModel, refused

LOGPROBS_INCLUDE = "message.output_text.logprobs"
MAX_TOP_LOGPROBS = 1  # genai reports the chosen token's log-probability only


class InputPart(StrictModel):
    type: Literal["input_text", "output_text", "text", "refusal", "input_image"]
    text: str | None = None
    refusal: str | None = None
    image_url: str | None = None  # input_image: a data: URL (serve/images.py)
    detail: Literal["auto", "low", "high"] | None = None


class Item(StrictModel):
    """One input item: a message (user, system, developer, or an earlier assistant answer),
    an earlier function call, or a function call's output."""

    type: Literal["message", "function_call", "function_call_output"] = "message"
    role: Literal["user", "system", "developer", "assistant"] | None = None
    content: str | list[InputPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[InputPart] | None = None

    @field_validator("role")
    @classmethod
    def _role(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") == "message" and v is None:
            raise ValueError("a message needs a role")
        return v

    def text(self, parts: str | list[InputPart] | None, first_image: int = 0) -> str:
        """The parts' text; an input_image is its tag, numbered from `first_image`."""
        if isinstance(parts, list):
            n = iter(range(first_image, first_image + len(parts)))
            return "".join(
                image_tag(next(n)) if p.type == "input_image" else p.text or p.refusal or ""
                for p in parts
            )
        return parts or ""

    def images(self) -> list[InputPart]:
        parts = self.content if isinstance(self.content, list) else []
        return [p for p in parts if p.type == "input_image"]


class FunctionTool(StrictModel):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(StrictModel):
    type: Literal["function"]
    name: str


class TextFormat(StrictModel):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | bool | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(StrictModel):
    format: TextFormat | None = None
    verbosity: str | None = None  # a hint for OpenAI's models; no effect here


class ReasoningConfig(StrictModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: str | None = None  # summaries are OpenAI's models'; the thinking comes whole


class ResponsesRequest(RequestModel, StrictModel):  # a request body: strings checked
    model: str | None = None
    input: str | list[Item] = Field(min_length=1)
    instructions: str | None = None
    max_output_tokens: MaxNewTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool = True
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None  # effort "none": the template's thinking off
    stream: bool = False
    include: list[str] | None = None
    top_logprobs: int | None = Field(default=None, ge=0)
    metadata: dict[str, str] | None = None
    user: str | None = None
    store: bool | None = None  # nothing is stored either way
    # state this server does not keep: refused when asked for
    previous_response_id: str | None = None
    conversation: Any = None
    background: bool | None = None
    prompt: Any = None  # stored prompt templates

    @field_validator("previous_response_id", "conversation", "prompt")
    @classmethod
    def _stateless(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None:
            raise refused(str(info.field_name))
        return v

    @field_validator("background")
    @classmethod
    def _foreground(cls, v: bool | None) -> bool | None:
        if v:
            raise refused("background")
        return v

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs(cls, v: int | None) -> int | None:
        if v is not None and v > MAX_TOP_LOGPROBS:
            raise refused("top_logprobs")
        return v

    # -- the mapping onto the engine (as ChatRequest's) ------------------------------------
    def budget(self) -> int | None:
        return self.max_output_tokens

    def wants_logprobs(self) -> bool:
        return LOGPROBS_INCLUDE in (self.include or ()) or bool(self.top_logprobs)

    def constraint(self) -> dict[str, Any]:
        fmt = self.text.format if self.text else None
        if fmt is None or fmt.type == "text":
            return {}
        schema = fmt.schema_ if fmt.type == "json_schema" else None
        return {"json_schema": JSON_OBJECT_SCHEMA if schema is None else schema}

    def options(self) -> GenerationOptions:
        return GenerationOptions(
            max_new_tokens=self.budget() or DEFAULT_MAX_NEW_TOKENS,
            temperature=self.temperature,
            top_p=self.top_p,
            logprobs=self.wants_logprobs(),
            **self.constraint(),
        )

    def tool_set(self) -> ToolSet | None:
        tools = [
            {"type": "function", "function": t.model_dump(exclude_none=True, exclude={"type"})}
            for t in self.tools or ()
        ]
        choice: Any = self.tool_choice
        if isinstance(choice, NamedFunction):
            choice = {"type": "function", "function": {"name": choice.name}}
        return check_tools(tools, choice, self.parallel_tool_calls)

    def params(self) -> dict[str, str]:
        tools = {  # a tool's parameters: no "function" level in this API
            f"tools[{i}].function.parameters": f"tools[{i}].parameters"
            for i in range(len(self.tools or ()))
        }
        return {
            "max_new_tokens": "max_output_tokens",
            "prompt": "input",
            "json_schema": "text.format",
            **tools,
        }

    def engine_prompt(self) -> list[dict[str, Any]]:
        """Items → chat messages: consecutive function calls join one assistant message."""
        msgs: list[dict[str, Any]] = []
        if self.instructions:
            msgs.append({"role": "system", "content": self.instructions})
        if isinstance(self.input, str):
            return [*msgs, {"role": "user", "content": self.input}]
        seen = 0  # images so far: each image's tag is numbered over the request
        for item in self.input:
            if item.type == "function_call":
                fn = {"name": item.name or "", "arguments": item.arguments or "{}"}
                call = {"id": item.call_id, "type": "function", "function": fn}
                if msgs and msgs[-1]["role"] == "assistant" and "tool_calls" in msgs[-1]:
                    msgs[-1]["tool_calls"].append(call)
                else:
                    msgs.append({"role": "assistant", "content": "", "tool_calls": [call]})
            elif item.type == "function_call_output":
                msgs.append(
                    {
                        "role": "tool",
                        "content": item.text(item.output),
                        "tool_call_id": item.call_id,
                    }
                )
            else:
                role = "system" if item.role == "developer" else item.role
                msgs.append({"role": role, "content": item.text(item.content, seen)})
                seen += len(item.images())
        return msgs

    def thinks(self) -> bool | None:
        effort = self.reasoning.effort if self.reasoning else None
        return None if effort is None else effort != "none"

    def image_parts(self) -> list[tuple[str, str]]:
        """(where, url) of every input_image, in order: "input[0].content[1]"."""
        if isinstance(self.input, str):
            return []
        return [
            (f"input[{i}].content[{j}]", p.image_url or "")
            for i, item in enumerate(self.input)
            if item.type == "message" and isinstance(item.content, list)
            for j, p in enumerate(item.content)
            if p.type == "input_image"
        ]

    def echo(self) -> dict[str, Any]:
        """The request's settings, as a Response object repeats them."""
        fmt = self.text.format if self.text and self.text.format else None
        return {
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "metadata": self.metadata or {},
            "parallel_tool_calls": self.parallel_tool_calls,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "tool_choice": (
                self.tool_choice.model_dump()
                if isinstance(self.tool_choice, NamedFunction)
                else self.tool_choice or "auto"
            ),
            "tools": [t.model_dump(by_alias=True) for t in self.tools or ()],
            "text": {
                "format": fmt.model_dump(by_alias=True, exclude_none=True)
                if fmt
                else {"type": "text"}
            },
            "user": self.user,
            "store": False,
        }
