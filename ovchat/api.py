"""The Python API: `load()` a model, then `generate`, `stream` or hold a `chat`.

    import ovchat

    model = ovchat.load()  # the default model, prepared once
    print(model.generate("Why is the sky blue?", max_new_tokens=64))
    chat = model.chat(system="You are concise.")
    print(chat.send("Hi, I am Ada."))
    for chunk in chat.stream("What is my name?"):
        print(chunk.text, end="", flush=True)

A `Conversation` keeps the history and fits it into the model's context window (dropping the
oldest turns, never the system message); `ovchat chat` is a terminal around the same object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .engine import (
    CONVERSATION_PROPERTIES,
    DEFAULT_DEVICE,
    Chunk,
    Completion,
    Engine,
    GenerationOptions,
    Messages,
)
from .errors import OptionError
from .models import resolve

ROLES = ("system", "user", "assistant")
# The answer budget kept free when trimming: max_new_tokens, but never more than this share
# of the window (max_new_tokens defaults to 1024, more than a tiny model's whole context).
MAX_ANSWER_SHARE = 0.5

_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "max_new_tokens": (int,),
    "temperature": (int, float),
    "top_p": (int, float),
    "top_k": (int,),
    "repetition_penalty": (int, float),
    "seed": (int,),
    "stop": (str, list, tuple),
}


def make_options(base: GenerationOptions | None = None, **options: Any) -> GenerationOptions:
    """GenerationOptions from keyword arguments, checked by name, type and range.

    `stop` may be one string or a sequence of strings.
    """
    unknown = sorted(set(options) - set(_OPTION_TYPES))
    if unknown:
        raise OptionError(
            f"unknown generation option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            f"valid: {', '.join(_OPTION_TYPES)}",
        )
    clean: dict[str, Any] = {}
    value: Any
    for name, value in options.items():
        if value is None and name not in ("max_new_tokens", "stop"):
            clean[name] = None
            continue
        ok = not isinstance(value, bool) and isinstance(value, _OPTION_TYPES[name])
        if not ok:
            raise OptionError(f"{name} must be {_type_name(name)}, got {value!r}")
        if name == "stop":
            value = (value,) if isinstance(value, str) else tuple(value)
            if not all(isinstance(s, str) for s in value):
                raise OptionError(f"stop must be a string or a list of strings, got {value!r}")
        elif name in ("temperature", "top_p", "repetition_penalty"):
            value = float(value)
        clean[name] = value
    return dataclasses.replace(base or GenerationOptions(), **clean).validate()


def _type_name(name: str) -> str:
    types = _OPTION_TYPES[name]
    if name == "stop":
        return "a string or a list of strings"
    return "an integer" if types == (int,) else "a number"


def check_messages(messages: Any) -> list[dict[str, str]]:
    """A list of {"role", "content"} dicts with known roles, copied; OptionError otherwise."""
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        raise OptionError("messages must be a list of {'role': ..., 'content': ...} objects")
    out: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise OptionError(f"message {i} is not an object with 'role' and 'content'")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise OptionError(f"message {i} has role {role!r}", f"use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise OptionError(f"message {i} has no text 'content'")
        out.append({"role": str(role), "content": content})
    return out


def answer_budget(context_length: int, options: GenerationOptions) -> int:
    """Tokens kept free for the answer when fitting a conversation into the window."""
    return max(1, min(options.max_new_tokens, int(context_length * MAX_ANSWER_SHARE)))


def fit_context(
    engine: Engine, messages: Sequence[Mapping[str, str]], options: GenerationOptions
) -> tuple[list[dict[str, str]], int]:
    """Drop the oldest turns until the rendered prompt plus the answer budget fits the window.

    System messages are always kept, and so is the last user turn. Returns the messages and
    how many were dropped. If even that does not fit, the engine reports it (it clamps the
    answer, or raises ContextLengthError when the prompt alone is too long).
    """
    msgs = [dict(m) for m in messages]
    limit = engine.info.context_length - answer_budget(engine.info.context_length, options)
    dropped = 0
    while len(engine.prompt_ids(msgs)) > limit:
        turns = [i for i, m in enumerate(msgs) if m["role"] != "system"]
        users = [i for i in turns if msgs[i]["role"] == "user"]
        if len(users) < 2:  # only the newest turn left
            break
        # One turn = a user message and everything up to the next user message.
        start, end = turns[0], users[1] if users[0] == turns[0] else users[0]
        gone = [i for i in range(start, end) if msgs[i]["role"] != "system"]
        msgs = [m for i, m in enumerate(msgs) if i not in gone]
        dropped += len(gone)
    return msgs, dropped


class Model:
    """An exported model loaded on a device. Make one with `ovchat.load()`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def name(self) -> str:
        return self.engine.info.name

    @property
    def path(self) -> Path:
        return self.engine.info.path

    @property
    def context_length(self) -> int:
        """The model's context window in tokens (prompt plus answer)."""
        return self.engine.info.context_length

    def stream(
        self, prompt_or_messages: str | Messages, *, raw: bool = False, **options: Any
    ) -> Iterator[Chunk]:
        """Stream an answer as `Chunk`s; the last one has empty text and a `finish_reason`.

        A str is one user message through the model's chat template (`raw=True` sends it as
        is); a list of {"role", "content"} dicts is the whole conversation. Options are the
        fields of `GenerationOptions` (max_new_tokens, temperature, top_p, top_k,
        repetition_penalty, seed, stop). Leaving the loop early stops generation.
        """
        opts = make_options(**options)
        if isinstance(prompt_or_messages, str):
            request: str | Messages = (
                prompt_or_messages if raw else [{"role": "user", "content": prompt_or_messages}]
            )
        else:
            if raw:
                raise OptionError("raw=True needs a str prompt, not messages")
            request = check_messages(prompt_or_messages)
        return self.engine.stream(request, opts)

    def generate(
        self, prompt_or_messages: str | Messages, *, raw: bool = False, **options: Any
    ) -> str:
        """The whole answer as one string (see `stream` for the arguments)."""
        return "".join(c.text for c in self.stream(prompt_or_messages, raw=raw, **options))

    def chat(self, system: str | None = None, **options: Any) -> Conversation:
        """A conversation that keeps its history; `options` are its default GenerationOptions."""
        return Conversation(self, system=system, options=make_options(**options))

    def close(self) -> None:
        """Stop background threads (only the batching backend has any)."""
        self.engine.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<ovchat.Model {self.name!r} on {self.engine.device}, context {self.context_length}>"
        )


class Conversation:
    """A chat with history. Each turn sends the whole conversation through the chat template.

    When the conversation plus the answer budget would not fit the context window, the
    oldest turns are dropped (never the system message); `dropped` tells how many messages
    the last turn dropped. `last` holds the last turn's stats.
    """

    def __init__(
        self,
        model: Model,
        system: str | None = None,
        options: GenerationOptions | None = None,
    ) -> None:
        self.model = model
        self.options = options or GenerationOptions()
        self._messages: list[dict[str, str]] = []
        self.last: Completion | None = None
        self.dropped = 0
        if system:
            self.system = system

    @property
    def messages(self) -> list[dict[str, str]]:
        """The conversation so far, as {"role", "content"} dicts (a copy)."""
        return [dict(m) for m in self._messages]

    @messages.setter
    def messages(self, messages: Sequence[Mapping[str, str]]) -> None:
        self._messages = check_messages(messages)
        self.last = None

    @property
    def system(self) -> str | None:
        """The system message, or None."""
        for m in self._messages:
            if m["role"] == "system":
                return m["content"]
        return None

    @system.setter
    def system(self, text: str | None) -> None:
        rest = [m for m in self._messages if m["role"] != "system"]
        self._messages = ([{"role": "system", "content": text}] if text else []) + rest

    @property
    def context_tokens(self) -> int:
        """Tokens the conversation holds after the last turn (prompt plus answer)."""
        return self.last.prompt_tokens + self.last.generated_tokens if self.last else 0

    def reset(self) -> None:
        """Forget the turns; keep the system message."""
        self._messages = [m for m in self._messages if m["role"] == "system"]
        self.last = None
        self.dropped = 0

    def stream(self, text: str, **options: Any) -> Generator[Chunk, None, None]:
        """Send `text` and stream the answer as `Chunk`s.

        The turn is added to the history when the answer ends, or with the partial answer if
        the loop stops early (break, close, Ctrl-C). A turn that fails before any text
        (e.g. a message longer than the whole context) leaves the history untouched.
        """
        if not isinstance(text, str) or not text.strip():
            raise OptionError("the message is empty")
        opts = make_options(self.options, **options)
        engine = self.model.engine
        msgs, dropped = fit_context(
            engine, [*self._messages, {"role": "user", "content": text}], opts
        )
        return self._run(engine, msgs, dropped, opts)

    def _run(
        self, engine: Engine, msgs: list[dict[str, str]], dropped: int, opts: GenerationOptions
    ) -> Generator[Chunk, None, None]:
        parts: list[str] = []
        last: Chunk | None = None
        try:
            for chunk in engine.stream(msgs, opts):
                if last is None:
                    self.dropped = dropped  # known as soon as the answer starts
                last = chunk
                parts.append(chunk.text)
                yield chunk
        finally:
            # Also on break / close / Ctrl-C: keep what was said. A turn stopped before any
            # text is forgotten (two user messages in a row upset some chat templates).
            text = "".join(parts)
            if last is not None and (text or last.finish_reason):
                self._messages = [*msgs, {"role": "assistant", "content": text}]
                self.last = Completion(
                    text,
                    last.prompt_tokens,
                    last.generated_tokens,
                    last.ttft,
                    last.tokens_per_second,
                    last.finish_reason or "cancelled",
                )

    def send(self, text: str, **options: Any) -> str:
        """Send `text`; return the whole answer (also added to the history)."""
        return "".join(c.text for c in self.stream(text, **options))

    def __repr__(self) -> str:
        return f"<ovchat.Conversation {len(self._messages)} messages with {self.model.name!r}>"


def load(model: str | Path | None = None, device: str = DEFAULT_DEVICE, **properties: Any) -> Model:
    """Load an exported model dir (None: the default model, prepared once on first use).

    `properties` are OpenVINO properties (e.g. `INFERENCE_PRECISION_HINT="f32"`), on top of
    ovchat's defaults (latency hint, one stream, paged attention so that each turn of a
    conversation reuses the KV cache of the history it resends).
    """
    props = {**CONVERSATION_PROPERTIES, **properties}
    return Model(Engine(resolve(model), device=device, properties=props))
