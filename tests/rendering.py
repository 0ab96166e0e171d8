"""Known notes rendered to a piano recording with FluidSynth (Debian's ``fluidsynth`` and
the General MIDI sound font ``timgm6mb-soundfont``), for the audio tests and benchmark."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from builders import write_midi

SOUND_FONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")


def renderer_missing() -> str | None:
    """Why recordings cannot be rendered here, or None."""
    if not shutil.which("fluidsynth"):
        return "fluidsynth is not installed (apt-get install fluidsynth)"
    if not SOUND_FONT.exists():
        return f"no sound font at {SOUND_FONT} (apt-get install timgm6mb-soundfont)"
    return None


def known_notes(count: int = 12, seed: int = 0) -> list[tuple[float, float, int]]:
    """(onset s, offset s, MIDI pitch) of a seeded melody over C3-B5, every fourth note
    doubled an octave lower."""
    rng = np.random.default_rng(seed)
    notes, time = [], 0.3
    for k in range(count):
        pitch = int(rng.integers(48, 84))
        length = float(rng.choice([0.25, 0.4, 0.6]))
        notes.append((time, time + length, pitch))
        if k % 4 == 0:
            notes.append((time, time + length, pitch - 12))
        time += length * 0.9
    return notes


def note_f_measures(reference: list[tuple[float, float, int]], performance) -> tuple[float, float]:
    """mir_eval's note F-measures of a transcription against ``reference``: onsets only
    (50 ms, pitch), and onsets with offsets (20 % of the note or 50 ms)."""
    import mir_eval

    ref_i = np.array([[on, off] for on, off, _ in reference])
    ref_p = 440.0 * 2 ** ((np.array([p for *_, p in reference]) - 69) / 12)
    notes = performance.notes
    est_i = np.stack([notes["onset_sec"], notes["offset_sec"]], axis=1)
    est_p = 440.0 * 2 ** ((notes["pitch"].astype(float) - 69) / 12)
    prf = mir_eval.transcription.precision_recall_f1_overlap
    return (
        prf(ref_i, ref_p, est_i, est_p, offset_ratio=None)[2],
        prf(ref_i, ref_p, est_i, est_p)[2],
    )


def render(notes: list[tuple[float, float, int]], path: Path, rate: int = 44100) -> Path:
    """Render ``notes`` (velocity 80, piano) to the WAV file ``path``."""
    midi = write_midi(path.with_suffix(".mid"), tracks=[[(p, a, b, 80) for a, b, p in notes]])
    subprocess.run(
        ["fluidsynth", "-ni", "-q", "-r", str(rate), "-F", str(path), str(SOUND_FONT), str(midi)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path
