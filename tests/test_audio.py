"""Audio input: reading, transcription against the notes that were rendered, messages.

The transcription tests need the ``audio`` extra and transkun; they skip with the reason
where it is absent, except in CI (``PERF2SCORE_REQUIRE_AUDIO=1``), where they must run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import numpy as np
import pytest
from builders import write_midi
from rendering import known_notes, note_f_measures, render, renderer_missing

from perf2score.audio import EXTRA_HINT, is_audio
from perf2score.audio.transcriber import notes_to_performance
from perf2score.errors import Perf2ScoreError

REQUIRED = os.environ.get("PERF2SCORE_REQUIRE_AUDIO") == "1"  # set by .ci/run
HAVE_AUDIO = all(importlib.util.find_spec(m) for m in ("soundfile", "transkun"))
needs_audio = pytest.mark.skipif(
    not HAVE_AUDIO and not REQUIRED,
    reason="the 'audio' extra (soundfile) or transkun is not installed",
)
needs_renderer = pytest.mark.skipif(
    bool(renderer_missing()) and not REQUIRED, reason=renderer_missing() or ""
)
# Onset within 50 ms and the right pitch (mir_eval); benchmarks/transcription.py measured
# 0.97-1.0 on such renderings.
F_MEASURE_FLOOR = 0.9


def test_audio_is_recognised_by_its_suffix():
    assert is_audio("take.WAV") and is_audio("a/b.flac") and is_audio("x.mp3")
    assert not is_audio("take.mid") and not is_audio("take")


def test_transkun_events_become_a_performance_with_its_pedal():
    events = [
        {"start": 1.0, "end": 1.5, "pitch": 60, "velocity": 80},
        {"start": 0.5, "end": 0.9, "pitch": 64, "velocity": 300},
        {"start": 0.0, "end": 2.0, "pitch": -64, "velocity": 127},
        {"start": 1.5, "end": 3.0, "pitch": -64, "velocity": 127},
        {"start": 0.0, "end": 1.0, "pitch": -67, "velocity": 127},
        {"start": 2.0, "end": 2.0, "pitch": 62, "velocity": 50},
    ]
    performance = notes_to_performance(events, "take.wav")
    assert performance.notes["pitch"].tolist() == [64, 60]
    assert performance.notes["velocity"].tolist() == [127, 80]
    assert performance.pedal.tolist() == [[0.0, 3.0]]


def test_without_the_extra_audio_input_names_it(monkeypatch, tmp_path):
    from perf2score.audio.reading import read_audio

    monkeypatch.setitem(sys.modules, "soundfile", None)  # import fails as if not installed
    with pytest.raises(Perf2ScoreError) as caught:
        read_audio(tmp_path / "take.wav", 44100)
    assert EXTRA_HINT in str(caught.value) and "perf2score[audio]" in str(caught.value)


@needs_audio
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"RIFF\x10\x00\x00\x00WAVEgarbage-garbage", "not an audio file that can be read"),
        (b"plain text, not sound", "not an audio file that can be read"),
    ],
)
def test_bad_audio_files_get_one_line(tmp_path, data, message):
    from perf2score.audio.reading import read_audio

    path = tmp_path / "take.wav"
    path.write_bytes(data)
    with pytest.raises(Perf2ScoreError, match=message) as caught:
        read_audio(path, 44100)
    assert "\n" not in str(caught.value)


@needs_audio
def test_recordings_over_the_limit_are_refused_before_reading(tmp_path):
    import soundfile

    from perf2score.audio.reading import read_audio

    path = tmp_path / "long.wav"  # 31 minutes at 1 kHz: 3.7 MB
    soundfile.write(path, np.zeros(31 * 60 * 1000, np.int16), 1000, subtype="PCM_16")
    with pytest.raises(Perf2ScoreError, match="lasts 31 min"):
        read_audio(path, 44100)


@needs_audio
def test_resampling_keeps_the_duration(tmp_path):
    import soundfile

    from perf2score.audio.reading import read_audio

    path = tmp_path / "take.flac"
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)).astype(np.float32)
    soundfile.write(path, np.stack([tone, tone], axis=1), 22050)
    samples = read_audio(path, 44100)
    assert samples.shape == (44100, 2) and samples.dtype == np.float32
    assert abs(float(np.abs(samples).max()) - 0.2) < 0.01


@needs_audio
@needs_renderer
@pytest.mark.slow
def test_a_rendered_melody_is_transcribed(tmp_path):
    from perf2score.audio import transcribe_file

    notes = known_notes(count=12, seed=3)
    path = render(notes, tmp_path / "melody.wav")
    start = time.perf_counter()
    performance = transcribe_file(path)
    seconds = time.perf_counter() - start
    f_measure = note_f_measures(notes, performance)[0]
    print(f"transcribed {len(notes)} notes: F {f_measure:.3f} in {seconds:.1f} s")
    assert f_measure >= F_MEASURE_FLOOR
    assert performance.source == str(path)


def test_convert_transcribes_audio_files(monkeypatch, tmp_path):
    import perf2score.audio
    from perf2score import convert
    from perf2score.midi import read_performance

    melody = [(60 + k % 5, 0.5 * k, 0.5 * k + 0.45, 70) for k in range(16)]
    performance = read_performance(write_midi(tmp_path / "m.mid", tracks=[melody]))
    heard = []

    def transcribe(path):
        heard.append(path)
        return performance

    monkeypatch.setattr(perf2score.audio, "transcribe_file", transcribe)
    score = convert(tmp_path / "take.flac", backend="classical")
    assert heard == [tmp_path / "take.flac"]
    assert sum(len(chord.pitches) for chord in score.assembled.chords) == 16
