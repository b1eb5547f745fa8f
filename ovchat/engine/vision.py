"""Vision-language models: the Engine with images (openvino-genai's VLMPipeline).

A VisionEngine is an Engine whose pipeline is genai's VLMPipeline: the same planner (the
model's chat template, the window, the answer budget), the same options and the same
streamed Chunks; images ride along with the plan. Each image becomes genai's universal tag
(`<ov_genai_image_N>`) where it stands in the conversation (images given apart from the
messages: before the text of the last user message); genai expands the tag into the model's
own image tokens and embeds the image with the exported vision encoder.

One request runs at a time (VLMPipeline's scheduling). The prompt token count a chunk
reports is the text's: genai adds the image tokens itself.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import OptionError, reason
from ..modeldir import Kind, model_kind
from ..options import GenerationOptions
from .device import DEFAULT_DEVICE, load_error
from .engine import Engine
from .images import ImageSource, load_all
from .planner import Plan, Prompt
from .streamer import TokenCounter, streamer_class
from .tools import ToolSet

IMAGE_TAG = "<ov_genai_image_{}>"


def image_tag(index: int) -> str:
    """The text that stands for image `index` (0-based, over the whole request)."""
    return IMAGE_TAG.format(index)


def with_images(prompt: Prompt, count: int) -> Prompt:
    """`prompt` with tags for `count` images that it does not place itself: before the text
    of the last user message (or of a raw str prompt)."""
    missing = [image_tag(i) for i in range(count)]
    text = (
        prompt
        if isinstance(prompt, str)
        else "".join(str(m.get("content") or "") for m in prompt if isinstance(m, Mapping))
    )
    missing = [t for t in missing if t not in text]
    if not missing:
        return prompt
    if isinstance(prompt, str):
        return "".join(missing) + prompt
    msgs = [dict(m) if isinstance(m, Mapping) else m for m in prompt]
    users = [i for i, m in enumerate(msgs) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise OptionError("images need a user message to go with", param="messages")
    last = msgs[users[-1]]
    last["content"] = "".join(missing) + str(last.get("content") or "")
    return msgs


class VisionEngine(Engine):
    """An Engine for a vision-language export: `plan(..., images=[...])` adds images."""

    KIND: Kind = "vision"

    def __init__(
        self,
        model_dir: str | Path,
        device: str = DEFAULT_DEVICE,
        properties: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        kw.pop("backend", None)  # VLMPipeline: one request at a time, whatever was asked
        for unused in ("kv_cache_gb", "max_num_seqs", "prefill_chunk"):  # batching knobs
            kw.pop(unused, None)
        if kw.pop("prompt_lookup", False):
            raise OptionError(
                "prompt lookup is not offered for vision models", param="prompt_lookup"
            )
        # plan id → (the plan, weakly; the rendered text; the image tensors)
        self._inputs: dict[int, tuple[weakref.ref[Plan], str, list[Any]]] = {}
        super().__init__(model_dir, device, properties, backend="pipeline", **kw)

    def _load(self, kv_cache_gb: float, max_num_seqs: int, prefill_chunk: int) -> Any:
        import openvino_genai as ov_genai

        try:
            return ov_genai.VLMPipeline(str(self.path), self.device, **self.properties)
        except RuntimeError as e:
            raise load_error(self.path, e) from e

    def plan(
        self,
        prompt: Prompt,
        options: GenerationOptions | None = None,
        *,
        tools: ToolSet | None = None,
        strict_budget: bool = False,
        thinking: bool | None = None,
        grammar_timeout: float | None = None,
        images: Sequence[ImageSource] = (),
        image_names: Sequence[str] | None = None,
    ) -> Plan:
        """The Engine's plan, with `images` (bytes, paths, PIL images or HxWx3 arrays)
        decoded and checked (engine/images.py limits); errors name `images[i]`, or
        `image_names[i]` (where the request holds it)."""
        tensors = load_all(images, "images", image_names) if images else []
        prompt = with_images(prompt, len(tensors))
        text = self.planner.text(prompt, tools)
        plan = super().plan(
            prompt, options, tools=tools, strict_budget=strict_budget, thinking=thinking,
            grammar_timeout=grammar_timeout,
        )  # fmt: skip
        for key in [k for k, (ref, _, _) in self._inputs.items() if ref() is None]:
            del self._inputs[key]
        self._inputs[id(plan)] = (weakref.ref(plan), text, tensors)
        return plan

    def _take(self, plan: Plan) -> tuple[str, list[Any]]:
        entry = self._inputs.pop(id(plan), None)
        if entry is not None and entry[0]() is plan:
            return entry[1], entry[2]
        return str(self.tokenizer.decode(list(plan.ids), skip_special_tokens=False)), []

    def _generate(self, plan: Plan, counter: TokenCounter) -> None:
        """VLMPipeline, in a worker thread: one request at a time."""
        text, tensors = self._take(plan)
        error: BaseException | None = None
        try:
            with self._lock:
                counter.start = time.perf_counter()
                self._pipe.generate(
                    text,
                    images=tensors,
                    generation_config=plan.config,
                    streamer=streamer_class()(counter),
                )
        except RuntimeError as e:
            error = OptionError(f"the vision model refused this request: {reason(e)}")
        except BaseException as e:
            error = e
        finally:
            counter.finish(error)


def open_engine(model_dir: str | Path, **kw: Any) -> Engine:
    """An Engine for a chat export, a VisionEngine for a vision-language one."""
    if model_kind(Path(model_dir).expanduser()) == "vision":
        return VisionEngine(model_dir, **kw)
    return Engine(model_dir, **kw)
