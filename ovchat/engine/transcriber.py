"""The speech engine: a Whisper export loaded on a device; 16 kHz samples → text.

openvino-genai's WhisperPipeline does the work (features, encoder, decoder, the 30-second
windows of long audio, timestamps, language detection). ovchat adds what it does not: the
checks (a language the model knows, a task it has), the options as one value, and one call
at a time. Decoding files is ovchat/audio.py's; nothing here knows about terminals or HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..audio import SAMPLE_RATE
from ..errors import OptionError
from .device import DEFAULT_DEVICE
from .taskengine import TaskEngine

Task = Literal["transcribe", "translate"]
TASKS = ("transcribe", "translate")


@dataclass(frozen=True)
class Segment:
    """A stretch of the text and when it was said (seconds from the start)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """What was said: the text, its language (as the model names it, e.g. "en"), the
    audio's length, and with timestamps the segments."""

    text: str
    language: str
    seconds: float
    segments: list[Segment] = field(default_factory=list)


class Transcriber(TaskEngine):
    """A Whisper model loaded once; `transcribe()` may be called from any thread."""

    KIND = "speech"
    WHAT = "a speech model"
    HINT = "load a Whisper model exported with the task automatic-speech-recognition"

    def __init__(
        self,
        model_dir: str | Path,
        device: str = DEFAULT_DEVICE,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(model_dir, device, properties)
        base = self._pipe.get_generation_config()
        self.multilingual = bool(base.is_multilingual)
        # "<|en|>" → "en": the names clients use (ISO 639-1, as OpenAI takes them)
        self.languages = sorted(k.strip("<|>") for k in dict(base.lang_to_id))

    def _load(self) -> None:
        import openvino_genai as ov_genai

        self._pipe = ov_genai.WhisperPipeline(str(self.path), self.device, **self.properties)

    def config(
        self,
        language: str | None = None,
        task: str = "transcribe",
        timestamps: bool = False,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Any:
        """The WhisperGenerationConfig for these options (checked: each error names its
        field). No language: the model detects it."""
        if task not in TASKS:
            raise OptionError(f"task {task!r} is not known", "use transcribe or translate",
                              param="task")  # fmt: skip
        cfg = self._pipe.get_generation_config()
        if language:
            code = language.strip().lower().strip("<|>")
            if code not in self.languages:
                known = ", ".join(self.languages[:20]) + ("…" if len(self.languages) > 20 else "")
                raise OptionError(
                    f"this model does not know the language {language!r}",
                    f"use one of {known} (ISO 639-1 codes), or leave it out to detect it",
                    param="language",
                )
            cfg.language = f"<|{code}|>"
        if not self.multilingual and (language or task == "translate"):
            raise OptionError(
                f"{self.info.name} is an English-only model: it neither takes a language "
                "nor translates",
                "leave language and translation out, or load a multilingual Whisper",
                param="language" if language else "task",
            )
        cfg.task = task
        cfg.return_timestamps = bool(timestamps)
        if prompt:
            cfg.initial_prompt = prompt
        if not 0.0 <= temperature <= 1.0:
            raise OptionError(f"temperature must be between 0 and 1, got {temperature}",
                              param="temperature")  # fmt: skip
        if temperature > 0:
            cfg.do_sample, cfg.temperature = True, float(temperature)
        return cfg

    def transcribe(
        self,
        samples: Any,
        *,
        language: str | None = None,
        task: str = "transcribe",
        timestamps: bool = False,
        prompt: str | None = None,
        temperature: float = 0.0,
    ) -> Transcript:
        """Text for `samples` (mono float32 at 16 kHz; see ovchat.audio.read_audio).

        `task="translate"` gives English text whatever was spoken; `timestamps` gives the
        segments with their times; `prompt` steers spelling and style (Whisper's initial
        prompt); `temperature` above 0 samples instead of greedy decoding.
        """
        cfg = self.config(language, task, timestamps, prompt, temperature)
        if len(samples) == 0:
            raise OptionError("the audio holds no samples", "send a recording", param="file")
        with self._lock:
            result = self._pipe.generate(samples, cfg)
        segments = [
            Segment(float(c.start_ts), float(c.end_ts), str(c.text)) for c in result.chunks or []
        ]
        lang = str(result.language or "").strip("<|>") or (language or "")
        return Transcript(str(result.texts[0]), lang, len(samples) / SAMPLE_RATE, segments)

    def close(self) -> None:
        """Nothing runs in the background; kept so that a pool can close any engine."""
