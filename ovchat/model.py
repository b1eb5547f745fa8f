"""The Python API: `load()` a model, then `generate`, `stream` or hold a `chat`.

    import ovchat

    model = ovchat.load()  # the default model, prepared once
    print(model.generate("Why is the sky blue?", max_new_tokens=64))
    chat = model.chat(system="You are concise.")
    print(chat.send("Hi, I am Ada."))
    for chunk in chat.stream("What is my name?"):
        print(chunk.text, end="", flush=True)

A `Conversation` (conversation.py) keeps the history and fits it into the context window;
`ovchat chat` is a terminal around the same object. `generate()` answers one prompt with no
model kept (what `ovchat generate` runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import CONVERSATION_PROPERTIES, DEFAULT_DEVICE, Chunk, Completion, Engine, Messages
from .engine.tools import check_tools
from .errors import OptionError
from .library import resolve
from .modelbase import LoadedModel
from .modeldir import model_kind
from .options import GenerationOptions

if TYPE_CHECKING:
    from .conversation import Conversation
    from .embedmodel import EmbeddingModel
    from .rerankmodel import RerankModel
    from .speechmodel import SpeechModel


class Model(LoadedModel):
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

    def close(self) -> None:
        """Stop background threads (only the batching backend has any)."""
        self.engine.close()

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
) -> Model | EmbeddingModel | RerankModel | SpeechModel:
    """Load a model: a library name (`smollm2`, `smollm2:int8`), an exported dir, or None for
    the default model (prepared once on first use).

    `properties` are OpenVINO properties (e.g. `INFERENCE_PRECISION_HINT="f32"`), on top of
    ovchat's defaults (latency hint, one stream, paged attention so that each turn of a
    conversation reuses the KV cache of the history it resends). An embedding model gives an
    `EmbeddingModel`: it embeds (`embed()`) and refuses to generate; a reranker a
    `RerankModel` (`rerank()`), a speech model a `SpeechModel` (`transcribe()`).
    `prompt_lookup` turns on prompt-lookup decoding (see Engine).
    """
    path = resolve(model)
    kind = model_kind(path)
    if kind == "embedding":
        from .embedmodel import EmbeddingModel
        from .engine.embedder import Embedder

        return EmbeddingModel(Embedder(path, device=device, properties=properties))
    if kind == "rerank":
        from .rerankmodel import Reranker, RerankModel

        return RerankModel(Reranker(path, device=device, properties=properties))
    if kind == "speech":
        from .speechmodel import SpeechModel, Transcriber

        return SpeechModel(Transcriber(path, device=device, properties=properties))
    props = {**CONVERSATION_PROPERTIES, **properties}
    from .engine.vision import open_engine

    engine = open_engine(path, device=device, properties=props, prompt_lookup=prompt_lookup)
    return Model(engine)


def generate(
    prompt: str,
    model: str | Path | None = None,
    device: str = DEFAULT_DEVICE,
    system: str | None = None,
    raw: bool = False,
    options: GenerationOptions | None = None,
    properties: Mapping[str, Any] | None = None,
    on_text: Callable[[str], None] | None = None,
    prompt_lookup: bool = False,
    images: Sequence[str | Path] = (),
) -> Completion:
    """Answer `prompt` once. `raw` sends it as is (no chat template, no special tokens);
    `prompt_lookup` decodes with prompt-lookup drafts (see Engine); `images` (files) go
    with the prompt to a vision-language model."""
    if raw and system:
        raise OptionError(
            "a system message has no effect on a raw prompt",
            "put it in the raw prompt",
            param="raw",
        )
    from .engine.vision import VisionEngine, open_engine

    engine = open_engine(
        resolve(model), device=device, properties=properties, prompt_lookup=prompt_lookup
    )
    if raw:
        request: Any = prompt
    else:
        request = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
    if images and not isinstance(engine, VisionEngine):
        raise OptionError(
            f"{engine.info.name} is a text-only model: it does not take images",
            "choose a vision-language model (ovchat list shows their kind: vision)",
            param="images",
        )
    if images:
        plan = engine.plan(request, options, images=list(images))  # type: ignore[call-arg]
    else:
        plan = engine.plan(request, options)
    return Completion.collect(engine.stream(plan), on_text)
