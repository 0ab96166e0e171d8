"""Read an audio recording into float32 samples at the transcriber's sample rate."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from perf2score.audio import EXTRA_HINT
from perf2score.errors import Perf2ScoreError

MAX_AUDIO_SECONDS = 30 * 60.0  # transcription runs at about real time on two cores


def read_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """The recording's samples, shape (frames, channels), float32 in [-1, 1], resampled to
    ``sample_rate`` Hz.

    Raises:
        Perf2ScoreError: the extra is missing, the file is missing, empty, not audio that
            libsndfile reads (WAV, FLAC, MP3, Ogg, AIFF), silent, or longer than 30 min.
    """
    path = Path(path)
    try:
        import soundfile
    except ImportError:
        raise Perf2ScoreError(f"{path}: {EXTRA_HINT}") from None
    if path.is_dir():
        raise Perf2ScoreError(f"{path}: is a folder, not an audio file")
    if not path.is_file():
        raise Perf2ScoreError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise Perf2ScoreError(f"{path}: the file is empty")
    try:
        info = soundfile.info(str(path))
        if info.frames <= 0 or info.samplerate <= 0:
            raise Perf2ScoreError(f"{path}: the recording has no samples")
        seconds = info.frames / info.samplerate
        if seconds > MAX_AUDIO_SECONDS:
            raise Perf2ScoreError(
                f"{path}: the recording lasts {math.ceil(seconds / 60)} min "
                f"(at most {MAX_AUDIO_SECONDS / 60:.0f} min)"
            )
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as exc:
        raise Perf2ScoreError(f"{path}: not an audio file that can be read ({exc})") from exc
    except (RuntimeError, TypeError) as exc:  # odd headers surface as these
        raise Perf2ScoreError(f"{path}: not an audio file that can be read ({exc})") from exc
    if len(samples) == 0:
        raise Perf2ScoreError(f"{path}: the recording has no samples")
    if not np.isfinite(samples).all():
        raise Perf2ScoreError(f"{path}: the samples are not finite numbers")
    if rate != sample_rate:
        from scipy.signal import resample_poly

        common = math.gcd(int(rate), int(sample_rate))
        samples = resample_poly(samples, sample_rate // common, int(rate) // common, axis=0)
        samples = samples.astype(np.float32)
    return np.ascontiguousarray(samples)
