"""The request planner: prompt → token ids → checks → answer budget. One set of rules for
the Python API, the CLI and the server.

A prompt is raw text (sent as is, no special tokens added) or a list of messages (through
the model's own chat template). The plan holds the token ids and the options with the
answer budget fitted to the context window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ContextLengthError, OptionError, reason
from ..options import GenerationOptions, check_text
from .types import Messages

ROLES = ("system", "user", "assistant")
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
    config: Any = field(default=None, compare=False, repr=False)

    @property
    def prompt_tokens(self) -> int:
        return len(self.ids)


def check_messages(messages: Any) -> list[dict[str, str]]:
    """A list of {"role", "content"} dicts with known roles, copied; OptionError otherwise."""
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise OptionError(
            "messages must be a list of {'role': ..., 'content': ...} objects", param="messages"
        )
    out: list[dict[str, str]] = []
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
        if not isinstance(content, str):
            raise OptionError(f"message {i} has no text 'content'", param=f"messages[{i}].content")
        check_text(content, f"messages[{i}].content")
        out.append({"role": str(role), "content": content})
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

    def render(self, messages: Messages) -> str:
        """The model's own chat template applied to `messages`, ready for the answer."""
        msgs = check_messages(messages)
        if not self.has_chat_template:
            # A base model (no template): plain "role: content" lines, the answer after.
            return "\n".join([*(f"{m['role']}: {m['content']}" for m in msgs), "assistant:"])
        try:
            return str(self.tokenizer.apply_chat_template(msgs, True))
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

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """Raw text is sent as is; messages go through the chat template."""
        return self.encode(prompt if isinstance(prompt, str) else self.render(prompt))

    # -- the rules -----------------------------------------------------------------------------
    def plan(
        self,
        prompt: Prompt,
        options: GenerationOptions | None = None,
        *,
        strict_budget: bool = False,
    ) -> Plan:
        """Tokenize once and check: a non-empty prompt that leaves room in the window.

        An answer budget that would overflow the window is cut to what fits (the answer then
        ends with finish reason "length"). With `strict_budget` (OpenAI's rule, for the
        server) a budget larger than the whole window is an error instead.
        """
        options = options or GenerationOptions()
        text = prompt if isinstance(prompt, str) else self.render(prompt)
        self._refuse_if_far_too_long(text)
        return self.plan_ids(self.encode(text), options, strict_budget=strict_budget)

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
        self, ids: Sequence[int], options: GenerationOptions, *, strict_budget: bool = False
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
        return Plan(tuple(ids), options)

    # -- conversations -------------------------------------------------------------------------
    def answer_budget(self, options: GenerationOptions) -> int:
        """Tokens kept free for the answer when fitting a conversation into the window."""
        return max(1, min(options.max_new_tokens, int(self.context_length * MAX_ANSWER_SHARE)))

    def fit(
        self, messages: Messages, options: GenerationOptions
    ) -> tuple[list[dict[str, str]], int, list[int]]:
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
