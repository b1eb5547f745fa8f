"""`ovchat bench --image FILE`: what an image costs a vision-language model on this machine.

The same question is asked with and without the image, greedy with EOS ignored (so every
run decodes as many tokens), through ovchat's own path (VisionEngine on genai's
VLMPipeline, one request at a time, as `ovchat generate --image` runs it): genai's image
encoding time (its metrics: preparing the prompt's embeddings, the vision encoder with
it), time to first token, decode tokens/s, the prompt's tokens, and the process's peak
memory after the text-only runs and after the image runs. Medians of `reps` runs after a
warm-up of each.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidModelError
from ..library import resolve
from ..modeldir import KIND_ARTICLE, model_kind, read_model_info
from ..options import GenerationOptions
from .machine import cpu_model, versions
from .worker import peak_rss_mb

QUESTION = "Describe this image in detail."


def median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


@dataclass
class ImageBench:
    """One run of `ovchat bench --image`: medians over `reps` runs (times in ms)."""

    model: str
    image: str
    width: int
    height: int
    reps: int
    new_tokens: int
    load_s: float
    prompt_tokens: dict[str, int] = field(default_factory=dict)  # "text", "image"
    ttft_ms: dict[str, float | None] = field(default_factory=dict)
    decode_tps: dict[str, float | None] = field(default_factory=dict)
    image_encode_ms: float | None = None
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # after "load", "text", "image"
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[tuple[str, str, str]]:
        """(measure, without the image, with it) for the report."""

        def num(v: float | None, fmt: str = ".0f") -> str:
            return "-" if v is None else format(v, fmt)

        rss = self.peak_rss_mb
        return [
            ("prompt tokens", str(self.prompt_tokens["text"]), str(self.prompt_tokens["image"])),
            ("image encoding ms", "-", num(self.image_encode_ms, ".1f")),
            ("TTFT ms", num(self.ttft_ms["text"]), num(self.ttft_ms["image"])),
            ("decode tok/s", num(self.decode_tps["text"], ".1f"),
             num(self.decode_tps["image"], ".1f")),
            ("peak RSS MB", num(rss["text"]), num(rss["image"])),
        ]  # fmt: skip


def bench_image(
    model: str | None,
    image: str | Path,
    *,
    reps: int = 3,
    new_tokens: int = 64,
    device: str = "CPU",
    properties: dict[str, Any] | None = None,
    progress: Callable[[str], None] = lambda s: None,
) -> ImageBench:
    """Measure `image` on the vision-language `model` (a library name or an export's path).
    Raises InvalidModelError for a model that does not take images, ImageError for an
    image it cannot use."""
    from ..engine.images import load
    from ..engine.types import Completion
    from ..engine.vision import VisionEngine, open_engine

    path = resolve(model)
    model_type = model_kind(path)
    if model_type != "vision":  # said before anything is loaded
        what = "a text-only" if model_type == "chat" else f"{KIND_ARTICLE[model_type]} {model_type}"
        raise InvalidModelError(
            f"{read_model_info(path).name} is {what} model: measuring an image needs a "
            "vision model",
            "choose a vision-language model (ovchat list shows their kind: vision)",
            param="image",
        )
    picture = load(str(image), "image")
    t0 = time.perf_counter()
    engine = open_engine(path, device=device, properties=properties or {})
    load_s = time.perf_counter() - t0
    assert isinstance(engine, VisionEngine)
    result = ImageBench(
        model=engine.info.name, image=str(image), width=int(picture.shape[1]),
        height=int(picture.shape[0]), reps=reps, new_tokens=new_tokens, load_s=load_s,
        machine={"cpu": cpu_model(), "device": device, "versions": versions()},
    )  # fmt: skip
    result.peak_rss_mb["load"] = peak_rss_mb()
    opts = GenerationOptions(max_new_tokens=new_tokens, temperature=0, ignore_eos=True)
    messages = [{"role": "user", "content": QUESTION}]
    try:
        for kind, images in (("text", []), ("image", [picture])):
            runs = []
            for i in range(reps + 1):  # the first is a warm-up
                progress(f"{kind}: run {i + 1} of {reps + 1}")
                plan = engine.plan(messages, opts, images=images)
                runs.append(Completion.collect(engine.stream(plan)))
            timed = runs[1:]
            result.prompt_tokens[kind] = timed[-1].prompt_tokens
            result.ttft_ms[kind] = median([c.ttft * 1000 if c.ttft else None for c in timed])
            result.decode_tps[kind] = median([c.tokens_per_second for c in timed])
            result.peak_rss_mb[kind] = peak_rss_mb()
            if images:
                seconds = [c.image_seconds * 1000 if c.image_seconds else None for c in timed]
                result.image_encode_ms = median(seconds)
    finally:
        engine.close()
    return result
