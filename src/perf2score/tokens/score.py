"""Score attributes ↔ score tokens (see ``spec.SCORE_STREAMS``), one compound token per note.

Input rows have the fields of ``perf2score.score.attributes.ATTRIBUTE_DTYPE`` at
``ticks_per_quarter``; times go onto the 1/24-quarter grid (``encode_score`` reports how many
values were off it). ``bar`` is the measure advance since the previous row, so the notes'
order is the caller's (score order for the score LM, performance order for the converter).
Rows marked ``drop`` get ``drop = 1`` and ``IGNORE``-able attributes (their rows are zero).
Decoding rebuilds the measures from the bar advances and spells each note from its pitch and
``alter``.
"""

from __future__ import annotations

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.score.attributes import ATTRIBUTE_DTYPE
from perf2score.tokens.spec import DENOMINATORS, FIRST_VALUE, MAX_GRID

NATURAL_STEPS = {0: "C", 2: "D", 4: "E", 5: "F", 7: "G", 9: "A", 11: "B"}
BACKWARDS = 4


def _grid(ticks: np.ndarray, tpq: int) -> tuple[np.ndarray, int]:
    scaled = ticks.astype(np.int64) * GRID_PER_QUARTER
    off = int(np.sum(scaled % tpq != 0))
    return np.rint(scaled / tpq).astype(np.int64), off


def encode_score(
    targets: np.ndarray, ticks_per_quarter: int, drop: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], int]:
    """(token ids per stream, each (N,) int64; number of values off the 1/24 grid)."""
    n = len(targets)
    drop = np.zeros(n, bool) if drop is None else np.asarray(drop, bool)
    position, off_p = _grid(targets["position_ticks"], ticks_per_quarter)
    value, off_v = _grid(targets["duration_ticks"], ticks_per_quarter)
    length, off_m = _grid(targets["measure_length_ticks"], ticks_per_quarter)
    measure = targets["measure"].astype(np.int64)
    kept = np.flatnonzero(~drop)
    advance = np.zeros(n, dtype=np.int64)
    if len(kept):
        steps = np.diff(measure[kept], prepend=measure[kept[0]])
        advance[kept] = np.where(steps < 0, BACKWARDS, np.minimum(steps, 3))
    numerator = np.clip(targets["ts_num"].astype(np.int64), 1, 12)
    denominator = np.searchsorted(DENOMINATORS, np.clip(targets["ts_den"], 1, 16))
    tokens = {
        "bar": advance,
        "time_signature": (numerator - 1) * len(DENOMINATORS) + denominator,
        "measure_length": np.clip(length, 0, MAX_GRID),
        "position": np.clip(position, 0, MAX_GRID - 1),
        "value": np.clip(value, 0, MAX_GRID),
        "staff": np.clip(targets["staff"].astype(np.int64), 1, 2) - 1,
        "voice": (np.maximum(targets["voice"].astype(np.int64) % 100, 1) - 1) % 4,
        "alter": np.clip(targets["alter"].astype(np.int64), -2, 2) + 2,
        "key": np.clip(targets["key_fifths"].astype(np.int64), -7, 7) + 7,
        "grace": targets["is_grace"].astype(np.int64),
        "drop": drop.astype(np.int64),
    }
    for name, ids in tokens.items():
        if name != "drop":
            ids[drop] = 0
        tokens[name] = ids + FIRST_VALUE
    return tokens, off_p + off_v + off_m


def meter_ids(numerator: int, denominator: int) -> tuple[int, int]:
    """The (``time_signature``, ``measure_length``) token ids of a time signature (its
    nominal measure length on the 1/24-quarter grid)."""
    length = numerator * 4 * GRID_PER_QUARTER // denominator
    signature = (numerator - 1) * len(DENOMINATORS) + DENOMINATORS.index(denominator)
    return signature + FIRST_VALUE, min(length, MAX_GRID) + FIRST_VALUE


STEP_FIFTHS = {"F": -1, "C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5}
FIFTHS_STEPS = "FCGDAEB"


def shift_spelling(table: np.ndarray, fifths: int) -> np.ndarray:
    """Move a table's spellings (``step``, ``alter``, ``octave`` for its ``pitch``) by
    ``fifths`` along the line of fifths, in place; returns the table. A shift of 12 spells
    each pitch enharmonically (Gb -> F#), other shifts go with a transposition."""
    line = np.array([STEP_FIFTHS.get(s, 0) for s in table["step"]], dtype=np.int64)
    line = line + 7 * table["alter"].astype(np.int64) + fifths
    table["step"] = np.array([FIFTHS_STEPS[i] for i in (line + 1) % 7])
    table["alter"] = (line + 1) // 7
    table["octave"] = (table["pitch"] - table["alter"]) // 12 - 1
    return table


def _spell(pitch: int, alter: int) -> tuple[str, int, int]:
    natural = (pitch - alter) % 12
    if natural not in NATURAL_STEPS:  # the alter does not fit this pitch: simplest spelling
        sharp_keys = (1, 6, 8)  # C#, F#, G# read more easily than Db, Gb, Ab
        alter = 0 if pitch % 12 in NATURAL_STEPS else (1 if pitch % 12 in sharp_keys else -1)
        natural = (pitch - alter) % 12
    return NATURAL_STEPS[natural], alter, (pitch - alter) // 12 - 1


def decode_score(
    tokens: dict[str, np.ndarray], pitches: np.ndarray, ticks_per_quarter: int = GRID_PER_QUARTER
) -> tuple[np.ndarray, np.ndarray]:
    """(attributes (N,) ``ATTRIBUTE_DTYPE``, drop (N,)) from token ids and the pitches."""
    ids = {name: np.asarray(v) - FIRST_VALUE for name, v in tokens.items()}

    def ticks(grid: np.ndarray) -> np.ndarray:
        return grid * ticks_per_quarter // GRID_PER_QUARTER

    drop = ids["drop"].astype(bool)
    out = np.zeros(len(pitches), dtype=ATTRIBUTE_DTYPE)
    advance = np.where(ids["bar"] == BACKWARDS, 0, ids["bar"])
    advance[drop] = 0
    out["measure"] = np.cumsum(advance) - (advance[0] if len(advance) else 0)
    numerator = ids["time_signature"] // len(DENOMINATORS) + 1
    out["ts_num"] = numerator
    out["ts_den"] = np.asarray(DENOMINATORS)[ids["time_signature"] % len(DENOMINATORS)]
    out["measure_length_ticks"] = ticks(ids["measure_length"])
    out["position_ticks"] = ticks(ids["position"])
    out["duration_ticks"] = ticks(ids["value"])
    out["staff"] = ids["staff"] + 1
    out["voice"] = ids["voice"] + 1
    out["key_fifths"] = ids["key"] - 7
    out["key_mode"] = -1
    out["is_grace"] = ids["grace"].astype(bool)
    out["pitch"] = pitches
    for k, (pitch, alter) in enumerate(
        zip(pitches.tolist(), (ids["alter"] - 2).tolist(), strict=True)
    ):
        out["step"][k], out["alter"][k], out["octave"][k] = _spell(int(pitch), int(alter))
    return out, drop
