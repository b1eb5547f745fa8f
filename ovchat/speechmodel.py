"""The Python API of a speech model: `ovchat.load("whisper")` gives a SpeechModel.

    model = ovchat.load("whisper")
    print(model.transcribe("talk.mp3").text)                 # a path, or a file's bytes
    t = model.transcribe("talk.flac", task="translate", timestamps=True)
    for s in t.segments:
        print(f"{s.start:6.2f} {s.end:6.2f} {s.text}")

It is a `Model`, so code that takes models takes it; generating with it raises
InvalidModelError saying that it transcribes and does not generate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .audio import DEFAULT_MAX_SECONDS, read_audio
from .engine.transcriber import Segment, Transcriber, Transcript
from .taskmodel import TaskModel

__all__ = ["Segment", "SpeechModel", "Transcriber", "Transcript"]


class SpeechModel(TaskModel):
    """A Whisper model loaded on a device: `transcribe()` audio into text."""

    runner: Transcriber

    @property
    def languages(self) -> list[str]:
        """The languages it knows (ISO 639-1 codes)."""
        return list(self.runner.languages)

    def transcribe(
        self,
        audio: str | Path | bytes | Any,
        *,
        language: str | None = None,
        task: str = "transcribe",
        timestamps: bool = False,
        prompt: str | None = None,
        temperature: float = 0.0,
        max_seconds: float | None = DEFAULT_MAX_SECONDS,
    ) -> Transcript:
        """What was said in `audio`: a path or a file's bytes (WAV, FLAC, OGG, Opus, MP3;
        resampled to 16 kHz), or mono float32 samples already at 16 kHz.

        `language` (e.g. "en"; detected when None), `task` "transcribe" or "translate" (into
        English), `timestamps` (the segments with their times), `prompt` (steers spelling
        and style). Audio that does not decode or is longer than `max_seconds` raises
        OptionError naming it.
        """
        if isinstance(audio, (str, Path, bytes)):
            audio = read_audio(audio, max_seconds, param="audio").samples
        return self.runner.transcribe(
            audio,
            language=language,
            task=task,
            timestamps=timestamps,
            prompt=prompt,
            temperature=temperature,
        )
