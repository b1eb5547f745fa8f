"""A transcript as subtitles: SRT or WebVTT, one cue per timed segment (written by hand:
both formats are a few lines of text; the CLI and the server share them)."""

from __future__ import annotations

from .engine.transcriber import Segment, Transcript


def segments_of(t: Transcript) -> list[Segment]:
    """The transcript's timed segments; one spanning the audio when the model gave none."""
    return t.segments or [Segment(0.0, t.seconds, t.text)]


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def subtitles(t: Transcript, fmt: str) -> str:
    """`fmt` "srt" or "vtt"."""
    segs = segments_of(t)
    if fmt == "srt":
        return "\n".join(
            f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
            for i, s in enumerate(segs, 1)
        )
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n" for s in segs]
    return "WEBVTT\n\n" + "\n".join(cues)
