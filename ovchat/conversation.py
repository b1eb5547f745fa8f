"""A conversation with history: each turn sends the whole conversation through the chat
template, fitted into the context window by the planner (oldest turns dropped, never the
system message). `ovchat chat` is a terminal around it."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .engine import Chunk, Completion, Engine, check_messages
from .errors import OptionError
from .options import GenerationOptions

if TYPE_CHECKING:
    from .model import Model


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
        self._images: list[Any] = []  # a vision model's images so far, in tag order
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
        self._images = []
        self.last = None
        self.dropped = 0

    def stream(
        self, text: str, images: Sequence[Any] | None = None, **options: Any
    ) -> Generator[Chunk, None, None]:
        """Send `text` (with a vision model's `images`) and stream the answer as `Chunk`s.

        The turn is added to the history when the answer ends, or with the partial answer if
        the loop stops early (break, close, Ctrl-C). A turn that fails before any text
        (e.g. a message longer than the whole context) leaves the history untouched.
        """
        if not isinstance(text, str) or not text.strip():
            raise OptionError("the message is empty", param="message")
        opts = self.options.replace(**options) if options else self.options
        engine = self.model.engine
        if images or self._images:
            return self._with_images(text, list(images or ()), opts)
        msgs, dropped, ids = engine.planner.fit(
            [*self._messages, {"role": "user", "content": text}], opts
        )
        plan = engine.planner.plan_ids(ids, opts)
        return self._run(engine, plan, msgs, dropped)

    def _with_images(
        self, text: str, images: list[Any], opts: GenerationOptions
    ) -> Generator[Chunk, None, None]:
        """A turn of a conversation that holds images: every image is sent again each turn
        (as its tag in its message says); such a conversation is not trimmed to fit."""
        from .engine.vision import VisionEngine, image_tag

        engine = self.model.engine
        if not isinstance(engine, VisionEngine):
            raise OptionError(
                f"{self.model.name} is a text-only model: it does not take images",
                "load a vision-language model (ovchat list shows their kind: vision)",
                param="images",
            )
        tags = "".join(image_tag(len(self._images) + i) for i in range(len(images)))
        msgs = [*self._messages, {"role": "user", "content": tags + text}]
        everything = [*self._images, *images]
        plan = engine.plan(msgs, opts, images=everything)
        return self._run(engine, plan, msgs, 0, everything)

    def _run(
        self,
        engine: Engine,
        plan: Any,
        msgs: list[dict[str, str]],
        dropped: int,
        images: list[Any] | None = None,
    ) -> Generator[Chunk, None, None]:
        parts: list[str] = []
        last: Chunk | None = None
        try:
            for chunk in engine.stream(plan):
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
                if images is not None:
                    self._images = images
                self.last = Completion.of(last, text)

    def send(self, text: str, images: Sequence[Any] | None = None, **options: Any) -> str:
        """Send `text` (and images); return the whole answer (also added to the history)."""
        return "".join(c.text for c in self.stream(text, images, **options))

    def __repr__(self) -> str:
        return f"<ovchat.Conversation {len(self._messages)} messages with {self.model.name!r}>"
