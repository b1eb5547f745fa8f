"""Tools (function calling): what a request offers, how the model is told, and the calls read
back out of its answer.

The model sees the tools through its own chat template when the template takes them and
calls them in the format ovchat reads (Hermes-style `<tool_call>` tags, as Qwen, Hermes and
SmolLM3 templates do); otherwise through ovchat's generic prompt (GENERIC_PROMPT below), in
the same call format. The call itself is grammar-constrained by genai (structural tags, built
in structured.py), so its arguments always parse and fit the function's parameters.

Written by hand because genai renders tools into the prompt and constrains the output, but
neither describes tools to a template that does not take them nor parses calls back out.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import OptionError
from .grammarlimits import check_schema

# The call format: one JSON object per call between tags (Hermes). CALL_OPEN is also the
# trigger after which genai constrains the call (tool_choice "auto").
CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
RESULT_OPEN, RESULT_CLOSE = "<tool_response>", "</tool_response>"
CHOICES = ("auto", "none", "required")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
MAX_TOOLS = 128  # as OpenAI
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}

GENERIC_PROMPT = (
    "You can call functions to help answer. The functions, as JSON Schema, between "
    "<tools></tools>:\n<tools>\n{tools}\n</tools>\n"
    "To call a function, answer with one JSON object per call between <tool_call></tool_call> "
    "tags:\n<tool_call>\n"
    '{{"name": "<function name>", "arguments": <the arguments as a JSON object>}}\n'
    "</tool_call>\nEach result comes back between <tool_response></tool_response> tags."
)


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, its parameters' JSON Schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = None

    @property
    def schema(self) -> Mapping[str, Any]:
        return self.parameters if self.parameters is not None else EMPTY_PARAMETERS

    def as_dict(self) -> dict[str, Any]:
        """OpenAI's (and Hugging Face chat templates') shape of a tool."""
        fn: dict[str, Any] = {"name": self.name}
        if self.description:
            fn["description"] = self.description
        fn["parameters"] = dict(self.schema)
        return {"type": "function", "function": fn}

    def call_prefix(self) -> str:
        """What a call of this tool starts with, up to its arguments."""
        return f'{CALL_OPEN}\n{{"name": {json.dumps(self.name)}, "arguments": '


CALL_SUFFIX = f"}}\n{CALL_CLOSE}"


@dataclass(frozen=True)
class ToolSet:
    """The tools offered to one request and how they may be used.

    `choice` is "auto" (the model decides), "none" (answer in text; the tools are not shown),
    "required" (at least one call) or a tool's name (exactly that call); `parallel` allows
    more than one call in an answer.
    """

    tools: tuple[Tool, ...]
    choice: str = "auto"
    parallel: bool = True

    @property
    def active(self) -> bool:
        """Whether the model is offered the tools at all (not for choice "none")."""
        return bool(self.tools) and self.choice != "none"

    @property
    def forced(self) -> tuple[Tool, ...]:
        """The tools a call must be one of when a call is required; () under "auto"."""
        if self.choice == "required":
            return self.tools
        if self.choice in CHOICES:
            return ()
        return tuple(t for t in self.tools if t.name == self.choice)

    def by_name(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)


@dataclass(frozen=True)
class ToolCall:
    """A call read from an answer: `arguments` is JSON text (an object), as OpenAI sends it."""

    id: str
    name: str
    arguments: str

    def as_dict(self) -> dict[str, Any]:
        fn = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": fn}


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_param(i: int) -> str:
    """The request field of the i-th tool's parameters (as the Chat Completions API names it)."""
    return f"tools[{i}].function.parameters"


def tool_what(name: str) -> str:
    return f"the parameters of tool {name!r}"


# -- checking what a caller offers ----------------------------------------------------------
def check_tools(
    tools: Sequence[Mapping[str, Any]] | None,
    choice: str | Mapping[str, Any] | None = None,
    parallel: bool = True,
) -> ToolSet | None:
    """OpenAI-shaped tools ({"type": "function", "function": {...}}) and tool_choice, checked;
    None when there are no tools (and the choice does not need any)."""
    if isinstance(choice, Mapping):  # {"type": "function", "function": {"name": ...}}
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else None
        if choice.get("type") != "function" or not isinstance(name, str):
            raise OptionError(
                "tool_choice must be auto, none, required or a function "
                '({"type": "function", "function": {"name": ...}})',
                param="tool_choice",
            )
        choice = name
    choice = "auto" if choice is None else choice
    if not tools:
        if choice not in ("auto", "none"):
            raise OptionError(f"tool_choice is {choice!r} but no tools are given", param="tools")
        return None
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        raise OptionError("tools must be a list of functions", param="tools")
    if len(tools) > MAX_TOOLS:
        raise OptionError(f"at most {MAX_TOOLS} tools", param="tools")
    out = [_tool(t, i) for i, t in enumerate(tools)]
    for i, tool in enumerate(out):  # before the schemas reach the template or a grammar
        check_schema(tool.schema, tool_what(tool.name), tool_param(i))
    names = [t.name for t in out]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise OptionError(f"two tools are named {name!r}", param=f"tools[{i}].function.name")
    if choice not in CHOICES and choice not in names:
        raise OptionError(
            f"tool_choice names {choice!r}, which is not among the tools ({', '.join(names)})",
            param="tool_choice",
        )
    return ToolSet(tuple(out), str(choice), bool(parallel))


def _tool(t: Any, i: int) -> Tool:
    where = f"tools[{i}]"
    if not isinstance(t, Mapping):
        raise OptionError(f"{where} is not an object", param=where)
    fn = t.get("function", t)  # also the flat {"name", "parameters"} shape
    if t.get("type", "function") != "function" or not isinstance(fn, Mapping):
        raise OptionError(
            f"{where} has type {t.get('type')!r}: only function tools are supported", param=where
        )
    name = fn.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise OptionError(
            f"{where} needs a name of 1-64 letters, digits, _ or -, got {name!r}",
            param=f"{where}.function.name",
        )
    description = fn.get("description") or ""
    if not isinstance(description, str):
        raise OptionError(f"{where} has a description that is not text", param=where)
    params = fn.get("parameters")
    if params is not None and not (isinstance(params, Mapping) and _is_object_schema(params)):
        raise OptionError(
            f"{where}.function.parameters must be a JSON Schema of an object",
            param=f"{where}.function.parameters",
        )
    return Tool(name, description, dict(params) if params is not None else None)


def _is_object_schema(s: Mapping[str, Any]) -> bool:
    kind = s.get("type", "object")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


# -- messages with tool calls and results ---------------------------------------------------
def arguments_object(arguments: Any, where: str) -> dict[str, Any]:
    """A call's arguments (JSON text or a dict) as a dict, as chat templates want them."""
    value = arguments
    if isinstance(arguments, str):
        try:
            value = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise OptionError(f"{where} is not JSON", param=where) from None
    if not isinstance(value, dict):
        raise OptionError(f"{where} must be a JSON object", param=where)
    return value


def generic_messages(
    messages: Sequence[Mapping[str, Any]], tools: ToolSet | None
) -> list[dict[str, Any]]:
    """Messages for a template that knows nothing of tools: the tools described in the system
    message, calls written out in the call format, results as user turns."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role, content = m["role"], m.get("content") or ""
        if role == "assistant" and m.get("tool_calls"):
            calls = "\n".join(_call_text(c) for c in m["tool_calls"])
            out.append({"role": "assistant", "content": f"{content}\n{calls}".strip()})
        elif role == "tool":
            text = f"{RESULT_OPEN}\n{content}\n{RESULT_CLOSE}"
            if out and out[-1].get("tool_results"):  # parallel calls: one turn of results
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text, "tool_results": True})
        else:
            out.append({"role": role, "content": content})
    if tools is not None and tools.active:
        listed = "\n".join(json.dumps(t.as_dict(), ensure_ascii=False) for t in tools.tools)
        prompt = GENERIC_PROMPT.format(tools=listed)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{prompt}"}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return [{"role": m["role"], "content": m["content"]} for m in out]


def _call_text(call: Mapping[str, Any]) -> str:
    fn = call["function"]
    body = {"name": fn["name"], "arguments": fn["arguments"]}
    return f"{CALL_OPEN}\n{json.dumps(body, ensure_ascii=False)}\n{CALL_CLOSE}"
