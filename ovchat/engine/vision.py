"""Vision-language models: the Engine with images.

A VisionEngine is an Engine for a vision-language export: the same planner (the model's
chat template, the window, the answer budget), the same options and the same streamed
Chunks; the images ride along with the plan (decoded arrays, engine/images.py). Each image
becomes genai's universal tag (`<ov_genai_image_N>`) where it stands in the conversation
(images given apart from the messages: before the text of the last user message); genai
expands the tag into the model's own image tokens and embeds the image with the exported
vision encoder.

Two schedulers, as for text (engine.py):
- "batching" (the server): genai's ContinuousBatchingPipeline takes the text and images of
  each request (`add_request(id, text, images, config)`) and runs several at once in the
  same step loop as text (steploop.py); in an engine process too (remote.py).
- "pipeline" (generate, chat, the Python API): genai's VLMPipeline, one request at a time;
  also the server's fallback for an architecture the batching pipeline does not load.

The prompt token count of the last chunk is genai's: the text's tokens with the image
tokens it put in (streamed chunks before it carry the planned text's count).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import OptionError, reason
from ..modeldir import Kind, model_kind
from ..options import GenerationOptions
from .device import DEFAULT_DEVICE, load_error
from .engine import Engine
from .front import PlanningFront
from .images import ImageSource, load_all, tensor
from .planner import Plan, Prompt
from .streamer import TokenCounter, streamer_class
from .tools import ToolSet

IMAGE_TAG = "<ov_genai_image_{}>"
log = logging.getLogger(__name__)


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


class VisionFront(PlanningFront):
    """Planning with images, the same for a VisionEngine and an engine process's client
    (remote.py): `plan(..., images=[...])`."""

    takes_images = True

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
        """The planner's plan, with `images` (bytes, paths, PIL images or HxWx3 arrays)
        decoded and checked (engine/images.py limits) and the rendered text genai takes;
        errors name `images[i]`, or `image_names[i]` (where the request holds it)."""
        arrays = load_all(images, "images", image_names) if images else []
        prompt = with_images(prompt, len(arrays))
        text = self.planner.text(prompt, tools, thinking)
        plan = super().plan(
            prompt, options, tools=tools, strict_budget=strict_budget, thinking=thinking,
            grammar_timeout=grammar_timeout,
        )  # fmt: skip
        return replace(plan, text=text, images=tuple(arrays))


class VisionEngine(VisionFront, Engine):
    """An Engine for a vision-language export: `plan(..., images=[...])` adds images."""

    KIND: Kind = "vision"

    def __init__(
        self,
        model_dir: str | Path,
        device: str = DEFAULT_DEVICE,
        properties: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        if kw.pop("prompt_lookup", False):
            raise OptionError(
                "prompt lookup is not offered for vision models", param="prompt_lookup"
            )
        super().__init__(model_dir, device, properties, **kw)

    def _load(self, kv_cache_gb: float, max_num_seqs: int, prefill_chunk: int) -> Any:
        import openvino_genai as ov_genai

        if self.backend == "batching":
            try:
                return super()._load(kv_cache_gb, max_num_seqs, prefill_chunk)
            except OptionError:
                raise
            except Exception as e:  # an architecture genai batches not: one at a time
                log.warning(
                    "%s: continuous batching does not load this model (%s); its requests "
                    "run one at a time",
                    self.info.name,
                    reason(e.__cause__ or e),
                )
                self.backend = "pipeline"
        try:
            return ov_genai.VLMPipeline(str(self.path), self.device, **self.properties)
        except RuntimeError as e:
            raise load_error(self.path, e) from e

    def _vision_inputs(self, plan: Plan) -> tuple[str, list[Any]]:
        """What genai takes for `plan`: its text (the ids decoded for a plan made without
        one) and its images as tensors."""
        text = plan.text
        if text is None:
            text = str(self.tokenizer.decode(list(plan.ids), skip_special_tokens=False))
        return text, [tensor(a) for a in plan.images]

    def _generate(self, plan: Plan, counter: TokenCounter) -> None:
        """VLMPipeline, in a worker thread: one request at a time."""
        text, tensors = self._vision_inputs(plan)
        error: BaseException | None = None
        try:
            with self._lock:
                counter.start = time.perf_counter()
                result = self._pipe.generate(
                    text,
                    images=tensors,
                    generation_config=plan.config,
                    streamer=streamer_class()(counter),
                )
            metrics = result.perf_metrics
            counter.state.prompt_tokens = int(metrics.get_num_input_tokens()) or None
            counter.state.image_seconds = metrics.get_prepare_embeddings_duration().mean / 1000
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
