"""POST /v1/audio/transcriptions and /v1/audio/translations: OpenAI's speech-to-text
endpoints over the pool's speech (Whisper) models.

A multipart form: `file` (WAV, FLAC, OGG, Opus or MP3; at most `max_upload_bytes`, 25 MiB
by default, and `max_audio_seconds` of audio, 30 minutes by default), `model`, `language`
(transcriptions; ISO 639-1, detected when left out), `prompt`, `temperature`,
`response_format` (json, text, srt, vtt, verbose_json) and `timestamp_granularities[]`
(segment; word timing is not offered). A file that does not decode is a 400 naming `file`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Form, Request, UploadFile
from fastapi.responses import PlainTextResponse, Response
from pydantic import ConfigDict, Field

from ..audio import read_audio
from ..engine.transcriber import Transcriber, Transcript
from ..errors import OptionError
from ..subtitles import segments_of, subtitles
from .errors import APIError
from .requestmodel import RequestModel
from .state import ServerState
from .taskcall import in_slot

Format = Literal["json", "text", "srt", "verbose_json", "vtt"]
TIMED = ("srt", "vtt", "verbose_json")  # formats that carry segment times


class TranslationForm(RequestModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    file: UploadFile
    model: str | None = None
    prompt: str | None = None
    response_format: Format = "json"
    temperature: float = Field(default=0.0, ge=0.0, le=1.0)


class TranscriptionForm(TranslationForm):
    language: str | None = None
    timestamp_granularities: list[str] = Field(
        default_factory=list, alias="timestamp_granularities[]"
    )


def render(t: Transcript, fmt: str, task: str) -> Response | dict[str, Any]:
    """The transcript in one of OpenAI's response formats."""
    usage = {"type": "duration", "seconds": round(t.seconds, 3)}
    if fmt == "json":
        return {"text": t.text, "usage": usage}
    if fmt == "text":
        return PlainTextResponse(t.text + "\n")
    segs = segments_of(t)
    if fmt == "verbose_json":
        return {
            "task": task,
            "language": t.language,
            "duration": round(t.seconds, 3),
            "text": t.text,
            "segments": [
                {"id": i, "start": s.start, "end": s.end, "text": s.text}
                for i, s in enumerate(segs)
            ],
            "usage": usage,
        }
    media = "text/vtt" if fmt == "vtt" else "text/plain"
    return PlainTextResponse(subtitles(t, fmt), media_type=media)


async def _run(
    server: ServerState, request: Request, form: TranslationForm, task: str, language: str | None
) -> Response | dict[str, Any]:
    data = await form.file.read()
    limit = server.settings.max_audio_seconds
    try:
        audio = await asyncio.to_thread(read_audio, data, limit)
    except OptionError as e:
        raise APIError.from_option(e) from e
    _, transcriber = await server.runner(form.model, "speech", request)
    assert isinstance(transcriber, Transcriber)
    transcript = await in_slot(
        server,
        request,
        transcriber.transcribe,
        audio.samples,
        language=language,
        task=task,
        timestamps=form.response_format in TIMED,
        prompt=form.prompt,
        temperature=form.temperature,
    )
    server.metrics.transcribed_seconds.inc(transcript.seconds)
    return render(transcript, form.response_format, task)


def add_audio_routes(app: FastAPI, server: ServerState) -> None:
    @app.post("/v1/audio/transcriptions", response_model=None)
    async def transcriptions(
        form: Annotated[TranscriptionForm, Form()], request: Request
    ) -> Response | dict[str, Any]:
        if any(g != "segment" for g in form.timestamp_granularities):
            raise APIError(
                400,
                "only segment timestamps are offered (word timing is not)",
                param="timestamp_granularities",
                code="invalid_value",
            )
        return await _run(server, request, form, "transcribe", form.language)

    @app.post("/v1/audio/translations", response_model=None)
    async def translations(
        form: Annotated[TranslationForm, Form()], request: Request
    ) -> Response | dict[str, Any]:
        return await _run(server, request, form, "translate", None)
