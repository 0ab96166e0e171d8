"""The per-note score attribute record: the converter's central contract.

Every attribute source speaks it: the classical converter's estimates, the neural model's
decoded tokens, the oracle's ground truth (training targets are the same rows, read from
(n)ASAP scores), and score assembly reads it. One row per note; all times are integer ticks
at the table's ``ticks_per_quarter``.

Also here: the score reader's note table (``SCORE_NOTE_DTYPE``, one row per tied note of a
notated score) and the one key-mode encoding (``KEY_MODES``).
"""

from __future__ import annotations

import numpy as np

KEY_MODES = {"major": 0, "minor": 1}  # stored as integers; anything else is UNKNOWN_MODE
UNKNOWN_MODE = -1


def key_mode_code(mode: str | None) -> int:
    """The integer of a key mode name ("major" 0, "minor" 1, anything else -1)."""
    return KEY_MODES.get(str(mode), UNKNOWN_MODE)


def key_mode_name(code: int) -> str:
    """The name of a key-mode integer ("major", "minor" or "none")."""
    for name, value in KEY_MODES.items():
        if value == code:
            return name
    return "none"


ATTRIBUTE_DTYPE = np.dtype(
    [
        ("id", "U32"),
        ("pitch", np.int16),
        ("onset_ticks", np.int64),  # absolute, in unfolded score time
        ("measure", np.int32),  # index of the measure in the unfolded part
        ("measure_number", np.int32),  # the measure's number as notated
        ("measure_start_ticks", np.int64),
        ("measure_length_ticks", np.int64),  # actual length (a pickup is shorter)
        ("ts_num", np.int16),
        ("ts_den", np.int16),
        ("position_ticks", np.int64),  # onset - measure start
        ("duration_ticks", np.int64),  # note value, ties merged; 0 for grace notes
        ("staff", np.int8),  # 1 = upper, 2 = lower
        ("voice", np.int16),  # 1..4 within the staff (targets: part * 100 + MusicXML voice)
        ("step", "U1"),
        ("alter", np.int8),
        ("octave", np.int8),
        ("key_fifths", np.int8),
        ("key_mode", np.int8),  # KEY_MODES, or UNKNOWN_MODE
        ("is_grace", np.bool_),
        ("tie_start", np.bool_),  # the note's tie chain continues after... (it is tied)
        ("tie_stop", np.bool_),  # the note continues an earlier note (never aligned)
    ]
)

# The fields that describe notation: what assembly reads from any attribute source.
ATTRIBUTE_FIELDS = (
    "pitch", "measure", "measure_length_ticks", "ts_num", "ts_den", "position_ticks",
    "duration_ticks", "staff", "voice", "step", "alter", "octave", "key_fifths", "key_mode",
    "is_grace",
)  # fmt: skip


SCORE_NOTE_DTYPE = np.dtype(
    [
        ("pitch", np.int16),
        ("onset_ticks", np.int64),
        ("offset_ticks", np.int64),
        ("voice", np.int32),  # part * 100 + MusicXML voice (unique across parts)
        ("hand", np.int8),  # 0 = right (topmost staff in use), 1 = left
        ("staff", np.int8),
        ("is_grace", np.bool_),
        ("step", "U1"),
        ("alter", np.int8),
        ("octave", np.int8),
        ("part", np.int8),
        ("id", "U32"),
    ]
)
