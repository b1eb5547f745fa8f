"""The Python API: `load()` a model, then `generate`, `stream` or hold a `chat`.

    import ovchat

    model = ovchat.load()  # the default model, prepared once
    print(model.generate("Why is the sky blue?", max_new_tokens=64))
    chat = model.chat(system="You are concise.")
    print(chat.send("Hi, I am Ada."))
    for chunk in chat.stream("What is my name?"):
        print(chunk.text, end="", flush=True)

A `Conversation` (conversation.py) keeps the history and fits it into the context window;
`ovchat chat` is a terminal around the same object.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import CONVERSATION_PROPERTIES, DEFAULT_DEVICE, Chunk, Completion, Engine, Messages
from .engine.tools import check_tools
from .errors import InvalidModelError, OptionError
from .library import resolve
from .modeldir import model_kind
from .options import GenerationOptions

if TYPE_CHECKING:
    from .conversation import Conversation


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
        self,
        prompt_or_messages: str | Messages,
        *,
        raw: bool = False,
        images: Sequence[Any] | None = None,
        **options: Any,
    ) -> Iterator[Chunk]:
        """Stream an answer as `Chunk`s; the last one has empty text and a `finish_reason`.

        A str is one user message through the model's chat template (`raw=True` sends it as
        is); a list of {"role", "content"} dicts is the whole conversation. Options are the
        fields of `GenerationOptions` (max_new_tokens, temperature, top_p, top_k, min_p,
        repetition_penalty, presence_penalty, frequency_penalty, no_repeat_ngram_size, seed,
        stop) and constrained decoding (one of json_schema — a dict, JSON text or a pydantic
        model class —, regex, grammar). Leaving the loop early stops generation.
        `images` (a vision model's: bytes, file paths, PIL images or HxWx3 uint8 arrays) go
        with the last user message (docs/vision.md).
        """
        return self.engine.stream(self._plan(prompt_or_messages, raw, None, options, images))

    def _plan(
        self,
        prompt_or_messages: str | Messages,
        raw: bool,
        tools: Any,
        options: dict[str, Any],
        images: Sequence[Any] | None = None,
    ) -> Any:
        opts = GenerationOptions(**options)
        if images:
            from .engine.vision import VisionEngine

            if not isinstance(self.engine, VisionEngine):
                raise OptionError(
                    f"{self.name} is a text-only model: it does not take images",
                    "load a vision-language model (ovchat list shows their kind: vision)",
                    param="images",
                )
            if isinstance(prompt_or_messages, str) and not raw:
                prompt_or_messages = [{"role": "user", "content": prompt_or_messages}]
            return self.engine.plan(prompt_or_messages, opts, tools=tools, images=images)
        if isinstance(prompt_or_messages, str):
            if raw:
                return self.engine.plan(prompt_or_messages, opts, tools=tools)
            prompt_or_messages = [{"role": "user", "content": prompt_or_messages}]
        elif raw:
            raise OptionError("raw=True needs a str prompt, not messages", param="raw")
        return self.engine.plan(prompt_or_messages, opts, tools=tools)

    def generate(
        self,
        prompt_or_messages: str | Messages,
        *,
        raw: bool = False,
        images: Sequence[Any] | None = None,
        **options: Any,
    ) -> str:
        """The whole answer as one string (see `stream` for the arguments)."""
        chunks = self.stream(prompt_or_messages, raw=raw, images=images, **options)
        return "".join(c.text for c in chunks)

    def complete(
        self,
        prompt_or_messages: str | Messages,
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        parallel_tool_calls: bool = True,
        raw: bool = False,
        **options: Any,
    ) -> Completion:
        """The whole answer with its stats, and with `tools` (OpenAI's function shape) the
        calls the model made: `Completion.tool_calls` (ids, names, arguments as JSON text)
        and `text`, what it said besides. `tool_choice` is "auto", "none", "required" or a
        tool's name; a required or named call is grammar-constrained, so its arguments
        always parse and fit the tool's parameters. Send results back as {"role": "tool",
        "tool_call_id": ..., "content": ...} messages after the assistant's
        {"role": "assistant", "tool_calls": [...]} message."""
        toolset = check_tools(tools, tool_choice, parallel_tool_calls)
        plan = self._plan(prompt_or_messages, raw, toolset, options)
        done = Completion.collect(self.engine.stream(plan))
        return done.with_calls() if plan.tools is not None else done

    def chat(self, system: str | None = None, **options: Any) -> Conversation:
        """A conversation that keeps its history; `options` are its default GenerationOptions."""
        from .conversation import Conversation

        return Conversation(self, system=system, options=GenerationOptions(**options))

    def embed(self, texts: str | Sequence[str], **options: Any) -> Any:
        """Only embedding models embed (see `EmbeddingModel.embed`)."""
        raise InvalidModelError(
            f"{self.name} is a chat model: it generates text, it does not embed it",
            "load an embedding model: one exported with the task feature-extraction",
            param="model",
        )

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


def load(
    model: str | Path | None = None,
    device: str = DEFAULT_DEVICE,
    *,
    prompt_lookup: bool = False,
    **properties: Any,
) -> Model:
    """Load a model: a library name (`smollm2`, `smollm2:int8`), an exported dir, or None for
    the default model (prepared once on first use).

    `properties` are OpenVINO properties (e.g. `INFERENCE_PRECISION_HINT="f32"`), on top of
    ovchat's defaults (latency hint, one stream, paged attention so that each turn of a
    conversation reuses the KV cache of the history it resends). An embedding model gives an
    `EmbeddingModel`: a Model that embeds (`embed()`) and refuses to generate.
    `prompt_lookup` turns on prompt-lookup decoding (see Engine).
    """
    path = resolve(model)
    if model_kind(path) == "embedding":
        from .embedmodel import Embedder, EmbeddingModel

        return EmbeddingModel(Embedder(path, device=device, properties=properties))
    props = {**CONVERSATION_PROPERTIES, **properties}
    from .engine.vision import open_engine

    engine = open_engine(path, device=device, properties=props, prompt_lookup=prompt_lookup)
    return Model(engine)
