"""Key and pitch spelling of notes with score onsets and durations, without partitura.

- Key: Krumhansl–Schmuckler key finding with Temperley's (2007) Kostka–Payne profiles
  (pitch-class proportions of a textbook corpus; partitura's ``key_profiles="kp"``): the
  duration-weighted pitch-class histogram is correlated (Pearson) with the profile of each
  of the 24 keys; the best wins (ties: the first of C major … B major, then
  C minor … B minor). Each key is written with the conventional signature of its tonic
  (F♯ major and D♯ minor with sharps, D♭ major and B♭ minor with flats).
- Spelling: ps13s1 (Meredith 2006, "The ps13 pitch spelling algorithm", JNMR 35(2)), with a
  context of the 10 notes before and 40 after each note in (onset, pitch) order. ps13 spells
  each note relative to the first note's letter, so its spelling can lie a diminished second
  (12 fifths) away from the key found (G♭ major's notes written as F♯ major's, or in double
  flats under a G♭ signature): ``key_and_spelling`` moves it onto the key's side
  (``in_key_frame``).
- Sections: ``key_and_spelling_by_section`` (what both converters use) frames and pulls
  each note toward the key of its section (``perf2score.score.key_sections``: where the
  music settles in a remote key), and writes the home key's signature or each section's.

The same algorithms and settings as partitura 1.9's ``estimate_key(..., key_profiles="kp")`` /
``estimate_spelling``
(a test checks the results are the same), without importing partitura, whose import (about
1.5 s: scipy.interpolate, scipy.signal) was the largest part of converting a short file.
"""

from __future__ import annotations

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.score.attributes import key_mode_code
from perf2score.score.key_sections import (
    KP_MAJOR,
    KP_MINOR,
    MAJOR,
    MAJOR_FIFTHS,
    MINOR,
    MINOR_FIFTHS,
    key_sections,
)

# Kostka–Payne profiles (``key_sections``), major and minor, tonic first. Signature right on
# the first performance of each piece (performed pitches weighted by played seconds;
# benchmarks/key_profiles.py): train 164 of 182 pieces (90.1 %), validation 15 of 17,
# where the Krumhansl–Kessler (1982) probe-tone profiles (KK_*) got 141 (77.5 %) and 13
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

# ps13 works with chromatic pitch from A0 (MIDI 21) and letters ("morphs") from A
LETTERS = np.array(list("ABCDEFG"))
LETTER_CHROMA = np.array([0, 2, 3, 5, 7, 8, 10])  # A B C D E F G above A
FIRST_LETTER = np.array([0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 6])  # letter of the first note's chroma
INTERVAL_LETTERS = np.array([0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 6])  # letter steps of each interval
BEFORE, AFTER = 10, 40  # ps13s1's context, in notes
LETTER_FIFTHS = np.array([3, 5, 0, 2, 4, -1, 1])  # A … G on the line of fifths (C = 0)
FIFTHS_LETTERS = np.array([5, 2, 6, 3, 0, 4, 1])  # F C G D A E B: letter index of line -1 … 5
# near_local_centre: neighbours each side, rounds, the farthest a note stays from their centre
LOCAL_NOTES, LOCAL_ROUNDS, LOCAL_REACH = 32, 10, 6  # training scores: benchmarks/spelling.py


def estimate_key(
    pitches: np.ndarray,
    durations: np.ndarray,
    profiles: tuple[np.ndarray, np.ndarray] = (KP_MAJOR, KP_MINOR),
) -> tuple[int, int]:
    """(fifths, mode: 0 major / 1 minor) of notes (MIDI pitches, durations in any unit) by
    the (major, minor) ``profiles`` (12,), tonic first."""
    histogram = np.bincount(np.mod(pitches, 12), weights=durations, minlength=12)
    best, best_r = (0, MAJOR), -np.inf
    for mode, profile in zip((MAJOR, MINOR), profiles, strict=True):
        for tonic in range(12):
            r = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
            if r > best_r:  # strict: the first of equal keys stays
                best, best_r = (tonic, mode), r
    tonic, mode = best
    return (MAJOR_FIFTHS if mode == MAJOR else MINOR_FIFTHS)[tonic], mode


def spell(pitches: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """ps13s1 spelling: (N,) structured array with ``step`` (U1), ``alter``, ``octave``."""
    n = len(pitches)
    spelling = np.empty(n, dtype=[("step", "U1"), ("alter", int), ("octave", int)])
    if n == 0:
        return spelling
    order = np.lexsort((pitches, onsets))
    chromatic = np.asarray(pitches)[order].astype(np.int64) - 21
    chroma = np.mod(chromatic, 12)
    # context counts of each chroma: notes [i - BEFORE, i + AFTER) around note i
    counts = np.vstack([np.zeros(12, np.int64), np.cumsum(np.eye(12, dtype=np.int64)[chroma], 0)])
    k = np.arange(n)
    context = counts[np.minimum(k + AFTER, n)] - counts[np.maximum(k - BEFORE, 0)]
    # the letter each tonic gives each note, anchored on the first note's letter
    tonics = np.arange(12)
    tonic_letter = np.mod(
        FIRST_LETTER[chroma[0]] - INTERVAL_LETTERS[np.mod(chroma[0] - tonics, 12)], 7
    )
    letter_of = np.mod(INTERVAL_LETTERS[np.mod(chroma[:, None] - tonics, 12)] + tonic_letter, 7)
    strength = np.stack([(context * (letter_of == m)).sum(1) for m in range(7)], axis=1)
    letter = strength.argmax(1)
    # the octave of the letter nearest the chromatic pitch (candidates: same, up, down)
    octave = np.floor_divide(chromatic, 12)
    candidates = np.stack([octave, octave + 1, octave - 1], axis=1)
    distance = np.abs((octave + chroma / 12)[:, None] - (candidates + letter[:, None] / 7))
    morphetic = letter + 7 * candidates[k, distance.argmin(1)]
    letter_octave = np.floor_divide(morphetic, 7)
    alter = chromatic - 12 * letter_octave - LETTER_CHROMA[letter]
    written_octave = letter_octave + (letter > 1)  # octaves start at C
    back = np.empty(n, dtype=np.int64)
    back[order] = k
    spelling["step"] = LETTERS[letter][back]
    spelling["alter"] = alter[back]
    spelling["octave"] = written_octave[back]
    return spelling


def line_of_fifths(spelling: np.ndarray) -> np.ndarray:
    """(N,) each spelled note's place on the line of fifths (C 0, G 1, F -1, F♯ 6, G♭ -6)."""
    letter = np.searchsorted(LETTERS, spelling["step"])
    return LETTER_FIFTHS[letter] + 7 * spelling["alter"].astype(np.int64)


def spelled_at(line: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """The spelling (N,) (``step``, ``alter``, ``octave``) of MIDI ``pitches`` at places
    ``line`` on the line of fifths (each congruent to its pitch's: 7 × place ≡ pitch mod 12)."""
    spelling = np.empty(len(line), dtype=[("step", "U1"), ("alter", int), ("octave", int)])
    spelling["step"] = LETTERS[FIFTHS_LETTERS[np.mod(line + 1, 7)]]
    spelling["alter"] = np.floor_divide(line + 1, 7)
    spelling["octave"] = np.floor_divide(np.asarray(pitches) - spelling["alter"], 12) - 1
    return spelling


def in_key_frame(spelling: np.ndarray, pitches: np.ndarray, fifths: int) -> np.ndarray:
    """``spelling`` (N,) (``step``, ``alter``, ``octave`` of MIDI ``pitches``) moved by a whole
    number of diminished seconds (12 fifths: F♯ ↔ G♭, the sound unchanged) so that the notes'
    median place on the line of fifths lies nearest the middle of the key signature
    ``fifths``' seven steps (``fifths`` + 2); a new array."""
    if len(spelling) == 0:
        return spelling.copy()
    line = line_of_fifths(spelling)
    shift = 12 * int(np.round((fifths + 2 - np.median(line)) / 12))
    return spelled_at(line + shift, pitches) if shift else spelling.copy()


def near_local_centre(
    spelling: np.ndarray,
    pitches: np.ndarray,
    onsets: np.ndarray,
    fifths: int | np.ndarray,
    rounds: int = LOCAL_ROUNDS,
) -> np.ndarray:
    """``spelling`` with each note more than ``LOCAL_REACH`` fifths from the centre of its
    neighbours (the mean place on the line of fifths of the ``LOCAL_NOTES`` notes before and
    after it in (onset, pitch) order) written a diminished second nearer, ``rounds``
    times. A centre is first moved by 12 fifths to within 6 of the place halfway between
    C major's (2) and the key's (``fifths`` + 2): a passage in a remote key is written in the
    signature of fewer accidentals (C♯ minor's sharps in an A♭ major piece). ps13 chooses
    each note's letter from its context's letters, which keeps whole passages on the far
    side; this moves them back (tuned on the training split's scores). ``fifths``: the key's
    signature, or each note's (N,) where the key changes (``key_sections``)."""
    n = len(spelling)
    if n == 0:
        return spelling.copy()
    order = np.lexsort((pitches, onsets))
    line = line_of_fifths(spelling)[order]
    nearest = np.mod(7 * np.asarray(pitches)[order], 12)  # 0..11: each pitch's place
    k = np.arange(n)
    first, last = np.maximum(k - LOCAL_NOTES, 0), np.minimum(k + LOCAL_NOTES, n)
    keys = np.broadcast_to(np.asarray(fifths, dtype=np.float64), (n,))[order]
    middle = 2 + keys / 2  # halfway between C major's middle (2) and the key's
    for _ in range(rounds):
        sums = np.concatenate([[0], np.cumsum(line)])
        centre = (sums[last] - sums[first]) / (last - first)
        centre -= 12 * np.round((centre - middle) / 12)
        moved = nearest + 12 * np.round((centre - nearest) / 12).astype(np.int64)
        line = np.where(np.abs(line - centre) > LOCAL_REACH, moved, line)
    back = np.empty(n, dtype=np.int64)
    back[order] = k
    return spelled_at(line[back], pitches)


def key_and_spelling(
    pitches: np.ndarray,
    onsets: np.ndarray,
    durations: np.ndarray,
    rounds: int = LOCAL_ROUNDS,
    frame: bool = True,
    voted: float | None = None,
) -> tuple[int, int, np.ndarray]:
    """(key fifths, key mode code, spelling (N,) with step/alter/octave) of notes with onsets
    and durations in ticks (``GRID_PER_QUARTER`` per quarter). ``frame``: the spelling moved
    to the key's side of the line of fifths (``in_key_frame``); ``rounds``: of
    ``near_local_centre`` (0: ps13's letters as they are); ``voted``: a vote for the key
    (in fifths) that may choose the enharmonic key (``enharmonic_choice``), the spelling
    moved with it."""
    fifths, mode = estimate_key(np.asarray(pitches), np.asarray(durations) / GRID_PER_QUARTER)
    fifths = int(fifths)
    spelling = spell(np.asarray(pitches), np.asarray(onsets) / GRID_PER_QUARTER)
    if frame:
        spelling = in_key_frame(spelling, pitches, fifths)
    if frame and rounds:
        spelling = near_local_centre(spelling, pitches, np.asarray(onsets), fifths, rounds)
        spelling = in_key_frame(spelling, pitches, fifths)
    written = fifths if voted is None else enharmonic_choice(fifths, voted)
    if written != fifths:
        spelling = spelled_at(line_of_fifths(spelling) + written - fifths, pitches)
    return written, key_mode_code("major" if mode == MAJOR else "minor"), spelling


def enharmonic_choice(fifths: int, voted: float) -> int:
    """The key signature to write for a key found with ``fifths``: its enharmonic twin of as
    many accidentals (F♯ / G♭ major, D♯ / E♭ minor: six each) when a vote (the decoder's
    median key, in fifths) lies nearer the twin; any other key as found (between 5 and 7
    accidentals the found key's 5 stay: B major, not C♭ major)."""
    return -fifths if abs(fifths) == 6 and abs(-fifths - voted) < abs(fifths - voted) else fifths


def key_and_spelling_by_section(
    pitches: np.ndarray,
    onsets: np.ndarray,
    durations: np.ndarray,
    measures: np.ndarray,
    rounds: int = LOCAL_ROUNDS,
    voted: np.ndarray | None = None,
    signature_changes: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key fifths (N,), key mode code (N,), spelling (N,) with step/alter/octave) of notes
    with onsets and durations in ticks (``GRID_PER_QUARTER`` a quarter) and their
    ``measures`` (N,). The spelling is ``key_and_spelling``'s with each note framed and
    pulled toward its own section's key (``key_sections``: a section where the music
    settles in a remote key; the key found over the whole piece, ``estimate_key``, is the
    home key). The key written is the home key's for every note, or each section's with
    ``signature_changes``. ``voted`` (N,): each note's vote for its key (the decoder's, in
    fifths); the median vote of a signature's notes (of all notes, for the home key) may
    choose its enharmonic twin (``enharmonic_choice``), which the spelling is then framed
    and pulled toward."""
    pitches = np.asarray(pitches)
    home, home_mode = estimate_key(pitches, np.asarray(durations) / GRID_PER_QUARTER)
    fifths, modes = key_sections(pitches, measures, int(home))
    written = fifths.copy()
    if voted is not None:
        for signature in np.unique(fifths):
            members = fifths == signature
            written[members] = enharmonic_choice(
                int(signature), float(np.median(np.asarray(voted)[members]))
            )
    # framed and pulled toward the signature written: a passage in a remote key inside a
    # G-flat piece stays on its own side, where moving the whole spelling by 12 fifths
    # after (as ``key_and_spelling`` does) wrote it in double flats
    spelling = spell(pitches, np.asarray(onsets) / GRID_PER_QUARTER)
    spelling = _framed_by_signature(spelling, pitches, written)
    if rounds:
        spelling = near_local_centre(spelling, pitches, np.asarray(onsets), written, rounds)
        spelling = _framed_by_signature(spelling, pitches, written)
    if signature_changes:
        codes = np.where(modes == MINOR, key_mode_code("minor"), key_mode_code("major"))
        return written, codes, spelling
    home = int(home) if voted is None else enharmonic_choice(int(home), float(np.median(voted)))
    code = key_mode_code("minor" if home_mode == MINOR else "major")
    return np.full(len(pitches), home), np.full(len(pitches), code), spelling


def _framed_by_signature(
    spelling: np.ndarray, pitches: np.ndarray, fifths: np.ndarray
) -> np.ndarray:
    """``spelling`` (N,) with the notes of each signature of ``fifths`` (N,) moved together
    to its side of the line of fifths (``in_key_frame``); a new array."""
    line = line_of_fifths(spelling)
    for signature in np.unique(fifths):
        members = fifths == signature
        framed = in_key_frame(spelling[members], pitches[members], int(signature))
        line[members] = line_of_fifths(framed)
    return spelled_at(line, pitches)
