"""The request planner: prompt → token ids → checks → answer budget. One set of rules for
the Python API, the CLI and the server.

A prompt is raw text (sent as is, no special tokens added) or a list of messages (through
the model's own chat template). The plan holds the token ids and the options with the
answer budget fitted to the context window, and the tools offered (tools.py): tool calls
and results in the messages, and the tools themselves, go through the template when it takes
tools, otherwise through ovchat's generic tool prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ContextLengthError, OptionError, reason
from ..options import GenerationOptions, check_text
from .reasoning import Mode, reasoning_mode
from .structured import Constraint
from .tools import CALL_OPEN, ToolSet, arguments_object, generic_messages
from .types import Messages

ROLES = ("system", "user", "assistant", "tool")
# The answer budget kept free when trimming a conversation: max_new_tokens, but never more
# than this share of the window (max_new_tokens defaults to 1024, more than a tiny model's
# whole context).
MAX_ANSWER_SHARE = 0.5
# A prompt longer than this many characters per token of the window is tokenized only as far
# as needed to know that it cannot fit (a 1 MiB prompt: ~0.2 s of tokenizing that holds the
# GIL, and with it the server's event loop). The margin covers a word cut at the boundary.
CHARS_PER_TOKEN_BOUND = 16
BOUNDARY_TOKENS = 256

Prompt = str | Messages


@dataclass(frozen=True)
class Plan:
    """A request ready for the engine: the prompt's token ids and the fitted options (and,
    once an Engine has checked them, genai's config for them)."""

    ids: tuple[int, ...]
    options: GenerationOptions
    tools: ToolSet | None = None
    config: Any = field(default=None, compare=False, repr=False)
    # the constraint the grammar check accepted (built again by an engine in another process)
    constraint: Constraint | None = field(default=None, compare=False, repr=False)
    reasoning: Mode = ""  # how the answer may hold reasoning (engine/reasoning.py)
    reasoning_budget: int | None = None  # tokens of reasoning at most (thinking_budget.py)
    # A vision-language model's request (engine/vision.py): genai takes the rendered text
    # (its image tags in place) and the images (uint8 HxWx3 arrays: plain values, so that a
    # plan crosses the pipe to an engine process) rather than token ids.
    text: str | None = field(default=None, compare=False, repr=False)
    images: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    @property
    def prompt_tokens(self) -> int:
        """The prompt's tokens as planned (a vision model's image tokens are added by genai:
        the engine reports the whole count once it has encoded the images)."""
        return len(self.ids)


def check_messages(messages: Any) -> list[dict[str, Any]]:
    """A list of {"role", "content"} dicts with known roles, copied; OptionError otherwise.

    An assistant message may carry `tool_calls` (OpenAI's shape; its content may then be
    empty) and a "tool" message answers one (`tool_call_id`); their arguments come out as
    dicts, as chat templates want them.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise OptionError(
            "messages must be a list of {'role': ..., 'content': ...} objects", param="messages"
        )
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise OptionError(
                f"message {i} is not an object with 'role' and 'content'", param=f"messages[{i}]"
            )
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise OptionError(
                f"message {i} has role {role!r}",
                f"use one of {', '.join(ROLES)}",
                param=f"messages[{i}].role",
            )
        calls = _tool_calls(m.get("tool_calls"), i) if role == "assistant" else []
        if content is None and calls:
            content = ""
        if not isinstance(content, str):
            raise OptionError(f"message {i} has no text 'content'", param=f"messages[{i}].content")
        check_text(content, f"messages[{i}].content")
        msg: dict[str, Any] = {"role": str(role), "content": content}
        if calls:
            msg["tool_calls"] = calls
        if role == "tool" and isinstance(m.get("tool_call_id"), str):
            msg["tool_call_id"] = m["tool_call_id"]
        out.append(msg)
    return out


def _tool_calls(calls: Any, i: int) -> list[dict[str, Any]]:
    if calls is None:
        return []
    where = f"messages[{i}].tool_calls"
    if not isinstance(calls, Sequence) or isinstance(calls, str):
        raise OptionError(f"{where} must be a list of calls", param=where)
    out = []
    for k, c in enumerate(calls):
        fn = c.get("function") if isinstance(c, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise OptionError(f"{where}[{k}] needs a function with a name", param=f"{where}[{k}]")
        args = arguments_object(fn.get("arguments"), f"{where}[{k}].function.arguments")
        call: dict[str, Any] = {
            "type": "function",
            "function": {"name": fn["name"], "arguments": args},
        }
        if isinstance(c.get("id"), str):
            call["id"] = c["id"]
        out.append(call)
    return out


class Planner:
    """Turns prompts into Plans for one model: its tokenizer, chat template and window."""

    def __init__(self, tokenizer: Any, context_length: int) -> None:
        self.tokenizer = tokenizer
        self.context_length = context_length

    # -- prompt → text → ids -----------------------------------------------------------------
    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", ""))

    @property
    def template_takes_tools(self) -> bool:
        """The chat template renders tools and asks for calls in the format ovchat reads."""
        template = str(getattr(self.tokenizer, "chat_template", "") or "")
        return "tools" in template and CALL_OPEN in template

    def render(
        self, messages: Messages, tools: ToolSet | None = None, thinking: bool | None = None
    ) -> str:
        """The model's own chat template applied to `messages` (and the tools offered, unless
        the choice is "none"), ready for the answer. `thinking` sets the template's own
        switch (`enable_thinking`, Qwen3's name; None: the template's default)."""
        msgs = check_messages(messages)
        offered = tools is not None and tools.active
        uses_tools = offered or any(m["role"] == "tool" or "tool_calls" in m for m in msgs)
        native = self.template_takes_tools
        if uses_tools and not native:
            msgs = generic_messages(msgs, tools)
        if not self.has_chat_template:
            # A base model (no template): plain "role: content" lines, the answer after.
            return "\n".join([*(f"{m['role']}: {m['content']}" for m in msgs), "assistant:"])
        listed = [t.as_dict() for t in tools.tools] if tools and offered and native else None
        extra = {} if thinking is None else {"extra_context": {"enable_thinking": thinking}}
        try:
            return str(self.tokenizer.apply_chat_template(msgs, True, tools=listed, **extra))
        except (RuntimeError, TypeError) as e:
            raise OptionError(
                f"the chat template refused these messages: {reason(e)}", param="messages"
            ) from e

    def encode(self, text: str) -> list[int]:
        check_text(text)
        try:
            ids = self.tokenizer.encode(text, add_special_tokens=False).input_ids.data
        except (RuntimeError, TypeError) as e:
            raise OptionError(f"the prompt cannot be tokenized: {reason(e)}", param="prompt") from e
        return [int(i) for i in ids[0]]

    def text(
        self, prompt: Prompt, tools: ToolSet | None = None, thinking: bool | None = None
    ) -> str:
        """Raw text is sent as is; messages go through the chat template."""
        if isinstance(prompt, str):
            if tools is not None and tools.active:
                raise OptionError("tools need messages, not a raw prompt", param="tools")
            return prompt
        return self.render(prompt, tools, thinking)

    def prompt_ids(self, prompt: Prompt, tools: ToolSet | None = None) -> list[int]:
        return self.encode(self.text(prompt, tools))

    # -- the rules -----------------------------------------------------------------------------
    def plan(
        self,
        prompt: Prompt,
        options: GenerationOptions | None = None,
        *,
        tools: ToolSet | None = None,
        strict_budget: bool = False,
        thinking: bool | None = None,
    ) -> Plan:
        """Tokenize once and check: a non-empty prompt that leaves room in the window.

        An answer budget that would overflow the window is cut to what fits (the answer then
        ends with finish reason "length"). With `strict_budget` (OpenAI's rule, for the
        server) a budget larger than the whole window is an error instead.
        """
        options = options or GenerationOptions()
        if tools is not None and tools.active and options.constraint is not None:
            raise OptionError(
                f"{options.constraint[0]} cannot be combined with tools (a tool call is "
                "constrained to the tool's parameters)",
                "use tool_choice 'none', or drop the tools",
                param=options.constraint[0],
            )
        if tools is not None and tools.active and options.ignore_eos:
            raise OptionError(
                "ignore_eos cannot be combined with tools: the tokens after a call would be "
                "unconstrained",
                param="ignore_eos",
            )
        text = self.text(prompt, tools, thinking)
        self._refuse_if_far_too_long(text)
        ids = self.encode(text)
        plan = self.plan_ids(ids, options, tools=tools, strict_budget=strict_budget)
        if isinstance(prompt, str):
            return plan
        template = str(getattr(self.tokenizer, "chat_template", "") or "")
        return replace(plan, reasoning=reasoning_mode(template, text))

    def _refuse_if_far_too_long(self, text: str) -> None:
        """A ContextLengthError for a text whose first part alone overflows the window,
        without tokenizing the rest."""
        ctx = self.context_length
        head = ctx * CHARS_PER_TOKEN_BOUND
        if len(text) <= head:
            return
        n = len(self.encode(text[:head]))
        if n > ctx + BOUNDARY_TOKENS:
            raise ContextLengthError(
                f"the prompt is more than {n - BOUNDARY_TOKENS} tokens; the model's context "
                f"window is {ctx} tokens",
                "shorten the prompt or the conversation",
                param="prompt",
            )

    def plan_ids(
        self,
        ids: Sequence[int],
        options: GenerationOptions,
        *,
        tools: ToolSet | None = None,
        strict_budget: bool = False,
    ) -> Plan:
        ctx = self.context_length
        if strict_budget and options.max_new_tokens > ctx:
            raise OptionError(
                f"max_new_tokens is {options.max_new_tokens}, more than the model's context "
                f"window of {ctx} tokens",
                param="max_new_tokens",
            )
        n = len(ids)
        if n == 0:
            raise OptionError("the prompt is empty", "give at least one token", param="prompt")
        room = ctx - n
        if room < 1:
            raise ContextLengthError(
                f"the prompt is {n} tokens; the model's context window is {ctx} tokens",
                "shorten the prompt or the conversation",
                param="prompt",
            )
        if options.max_new_tokens > room:
            options = options.replace(max_new_tokens=room)  # answer until the window is full
        return Plan(tuple(ids), options, tools if tools is not None and tools.active else None)

    # -- conversations -------------------------------------------------------------------------
    def answer_budget(self, options: GenerationOptions) -> int:
        """Tokens kept free for the answer when fitting a conversation into the window."""
        return max(1, min(options.max_new_tokens, int(self.context_length * MAX_ANSWER_SHARE)))

    def fit(
        self, messages: Messages, options: GenerationOptions
    ) -> tuple[list[dict[str, Any]], int, list[int]]:
        """Drop the oldest turns until the rendered prompt plus the answer budget fits.

        System messages are always kept, and so is the last user turn. Returns the messages,
        how many were dropped and their token ids (for `plan_ids`, which reports a prompt
        that still does not fit).
        """
        msgs = check_messages(messages)
        limit = self.context_length - self.answer_budget(options)
        dropped = 0
        while len(ids := self.prompt_ids(msgs)) > limit:
            turns = [i for i, m in enumerate(msgs) if m["role"] != "system"]
            users = [i for i in turns if msgs[i]["role"] == "user"]
            if len(users) < 2:  # only the newest turn left
                break
            # One turn = a user message and everything up to the next user message.
            start, end = turns[0], users[1] if users[0] == turns[0] else users[0]
            gone = [i for i in range(start, end) if msgs[i]["role"] != "system"]
            msgs = [m for i, m in enumerate(msgs) if i not in gone]
            dropped += len(gone)
        return msgs, dropped, ids
