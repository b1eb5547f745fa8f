"""Audio files → what a speech model hears: mono float32 samples at 16 kHz.

Decoding is libsndfile's (through soundfile: WAV, FLAC, OGG/Vorbis, Opus and, from
libsndfile 1.1 on, MP3); resampling is scipy's polyphase filter (`resample_poly`). ovchat
adds the checks: a file that does not decode, holds no samples, or is longer than the limit
is an OptionError naming the field (`file`), before any model runs.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OptionError

SAMPLE_RATE = 16_000  # what Whisper's feature extractor expects
DEFAULT_MAX_SECONDS = 30 * 60.0  # the longest audio taken unless asked otherwise
FORMATS = "WAV, FLAC, OGG/Vorbis, Opus or MP3"


@dataclass(frozen=True)
class Audio:
    """Mono samples at SAMPLE_RATE (floats in [-1, 1]) and the source's own rate."""

    samples: Any  # numpy.ndarray of float32
    source_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def read_audio(
    source: str | Path | bytes, max_seconds: float | None = DEFAULT_MAX_SECONDS, param: str = "file"
) -> Audio:
    """Decode `source` (a path, or a file's bytes), downmix to mono, resample to 16 kHz."""
    import soundfile as sf

    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else Path(source).expanduser()
    if isinstance(handle, Path) and not handle.is_file():
        raise OptionError(f"{handle} does not exist", "check the path", param=param)
    try:
        with sf.SoundFile(handle) as f:
            rate, frames = int(f.samplerate), int(f.frames)
            if max_seconds is not None and frames > max_seconds * rate:
                raise OptionError(
                    f"the audio is {frames / rate:.0f} s long, more than the limit of "
                    f"{max_seconds:g} s",
                    "send a shorter recording, or split it",
                    param=param,
                )
            data = f.read(dtype="float32", always_2d=True)
    except OptionError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise OptionError(
            "the audio could not be decoded",
            f"send a {FORMATS} file",
            param=param,
        ) from e
    if data.size == 0 or rate <= 0:
        raise OptionError("the audio holds no samples", "send a recording", param=param)
    mono = data.mean(axis=1)
    if not bool(_finite(mono)):
        raise OptionError("the audio holds invalid samples", f"send a {FORMATS} file", param=param)
    return Audio(resample(mono, rate), rate)


def resample(samples: Any, rate: int, to: int = SAMPLE_RATE) -> Any:
    """`samples` at `rate` → at `to`, by scipy's polyphase resampler (anti-aliased)."""
    import numpy as np

    if rate == to:
        return np.ascontiguousarray(samples, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(rate, to)
    out = resample_poly(samples, to // g, rate // g)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _finite(samples: Any) -> bool:
    import numpy as np

    return bool(np.isfinite(samples).all())
