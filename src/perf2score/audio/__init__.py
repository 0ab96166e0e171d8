"""Audio recordings as input: read a recording, transcribe it to a performance.

The transcriber is transkun 2.0 (Yan & Duan, ISMIR 2024; MIT), whose 56 MB checkpoint ships
inside its own package: nothing is downloaded at run time. Both it and the audio reader are
an optional extra; without them, audio input gives one line naming the extra.
"""

from __future__ import annotations

import os
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff")
EXTRA_HINT = (
    "audio input needs the optional extra: pip install 'perf2score[audio]' "
    "&& pip install --no-deps transkun==2.0.1"
)


def is_audio(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an audio recording (by its suffix)."""
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def transcribe_file(path: str | os.PathLike):
    """The performance (``perf2score.Performance``) transcribed from an audio recording."""
    from perf2score.audio.transcriber import transcribe_file as _transcribe

    return _transcribe(path)


__all__ = ["AUDIO_SUFFIXES", "EXTRA_HINT", "is_audio", "transcribe_file"]
