"""`ovchat transcribe -m MODEL FILE`: the text of a recording (WAV, FLAC, OGG, Opus or MP3,
resampled to 16 kHz) from a Whisper model; `--translate` gives English, `--timestamps` the
segments with their times, `--format` srt or vtt subtitles, or json."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..audio import DEFAULT_MAX_SECONDS, read_audio
from ..engine import DEFAULT_DEVICE
from ..engine.transcriber import Transcriber, Transcript
from ..errors import OptionError
from ..library import lookup
from ..subtitles import subtitles
from .cliargs import add_model_arguments, properties_from_args

FLAGS = {"file": "FILE", "audio": "FILE", "language": "--language", "task": "--translate",
         "temperature": "--temperature", "max_seconds": "--max-seconds"}  # fmt: skip
FORMATS = ("text", "json", "srt", "vtt")


def transcribe(
    file: str | Path,
    model: str | Path,
    device: str = DEFAULT_DEVICE,
    properties: Mapping[str, Any] | None = None,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    **options: Any,
) -> tuple[Transcriber, Transcript]:
    """Decode `file`, load `model` (a library name or an export's path), transcribe once
    (`options`: Transcriber.transcribe's)."""
    audio = read_audio(file, max_seconds)  # first: a bad file fails before a model loads
    transcriber = Transcriber(lookup(model).path, device=device, properties=properties)
    return transcriber, transcriber.transcribe(audio.samples, **options)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="the recording: wav, flac, ogg, opus or mp3")
    add_model_arguments(p)
    p.add_argument("--language", help="what is spoken, e.g. en or de (default: detected)")
    p.add_argument("--translate", action="store_true", help="English text, whatever is spoken")
    p.add_argument("--timestamps", action="store_true", help="segments with their times")
    p.add_argument("--format", choices=FORMATS, default="text", help="output (default: text)")
    p.add_argument("--prompt", help="text that steers spelling and style")
    p.add_argument("--temperature", type=float, default=0.0, help="above 0: sample (0: greedy)")
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                   help=f"longest audio taken (default {DEFAULT_MAX_SECONDS:g})")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    if not args.model:
        raise OptionError(
            "name a speech model",
            "e.g. ovchat transcribe -m NAME FILE; pull one with ovchat pull SOURCE "
            "--task automatic-speech-recognition-with-past",
        )
    timed = args.timestamps or args.format in ("srt", "vtt")
    transcriber, t = transcribe(
        args.file, args.model, args.device, properties_from_args(args), args.max_seconds,
        language=args.language, task="translate" if args.translate else "transcribe",
        timestamps=timed, prompt=args.prompt, temperature=args.temperature,
    )  # fmt: skip
    if args.format in ("srt", "vtt"):
        print(subtitles(t, args.format), end="")
    elif args.format == "json":
        segs = [{"start": s.start, "end": s.end, "text": s.text} for s in t.segments]
        out = {"model": transcriber.info.name, "text": t.text, "language": t.language,
               "duration": round(t.seconds, 3)}  # fmt: skip
        if timed:
            out["segments"] = segs
        print(json.dumps(out))
    elif args.timestamps:
        for s in t.segments:
            print(f"[{s.start:7.2f} → {s.end:7.2f}] {s.text.strip()}")
    else:
        print(t.text.strip())
    return 0
