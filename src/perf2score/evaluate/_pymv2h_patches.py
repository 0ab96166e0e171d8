"""Patches to pyMV2H 1.1.0, installed only while one of our MV2H evaluations runs.

Speed (exact equivalents): pyMV2H matches notes (``match_note_list``) and metrical
groupings (in ``meter_score``) by scanning whole lists for every element: minutes on a
5,000-note piece. ``fast_match_note_list`` and ``fast_meter_score`` return the same matches
in the same order (first remaining candidate in list order) using per-pitch and
per-time-bucket indexes; ``tests/test_mv2h.py`` checks that they equal pyMV2H's.

Correctness: pyMV2H's ``harmony_score`` reads the transcription's keys in place of the
ground truth's and takes the *later* end of two key regions as their overlap's end, so a
piece with a key change can score above 1. ``key_harmony_score`` is MV2H's definition
(McLeod & Steedman 2018): the duration-weighted key score over the ground truth's span,
1 for the same key, 0.5 for a fifth away in the same mode, 0.3 for the relative and 0.2
for the parallel key. Neither score has chord symbols, so harmony is the key score alone.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from unittest import mock

import pyMV2H.metrics.meter as _meter
import pyMV2H.metrics.multi_pitch as _multi_pitch
import pyMV2H.metrics.mv2h as _mv2h
import pyMV2H.metrics.voice as _voice
from pyMV2H.metrics.f1 import f1_score
from pyMV2H.utils import matches as _matches
from pyMV2H.utils.algorithm_config import GROUPING_EPSILON, ONSET_DELTA

_original_match_note_list = _matches.match_note_list


def fast_match_note_list(p_notes: list, t_notes: list, *args, **kwargs) -> dict:
    """Same result as ``pyMV2H.utils.matches.match_note_list`` (without decision export)."""
    if args or kwargs.get("export_decisions_in"):
        return _original_match_note_list(p_notes, t_notes, *args, **kwargs)
    by_pitch: dict[int, list[int]] = defaultdict(list)
    for index, note in enumerate(p_notes):
        by_pitch[note.pitch].append(index)
    used = [False] * len(p_notes)
    matched: dict = {}
    for t_note in t_notes:
        for index in by_pitch.get(t_note.pitch, ()):
            if not used[index] and abs(t_note.on - p_notes[index].on) <= ONSET_DELTA:
                used[index] = True
                matched[t_note] = p_notes[index]
                break
    return matched


def _first_matching(groups: list, bucket_width: int):
    buckets: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        buckets[group.start_time // bucket_width].append(index)
    return buckets


def fast_meter_score(p_music, t_music) -> float:
    """Same result as ``pyMV2H.metrics.meter.meter_score``."""
    p_music.read_if_needed()
    t_music.read_if_needed()
    t_groupings = _meter._get_groupings(t_music)  # noqa: SLF001 - pyMV2H's own grouping
    p_groupings = _meter._get_groupings(p_music)  # noqa: SLF001
    width = GROUPING_EPSILON + 1
    buckets = _first_matching(p_groupings, width)
    used = [False] * len(p_groupings)
    true_positives = 0
    for t_group in t_groupings:
        key = t_group.start_time // width
        candidates = sorted(
            i for b in (key - 1, key, key + 1) for i in buckets.get(b, ()) if not used[i]
        )
        for index in candidates:
            if _matches.grouping_match(t_group, p_groupings[index]):
                used[index] = True
                true_positives += 1
                break
    false_positives = len(t_groupings) - true_positives
    false_negatives = len(p_groupings) - true_positives
    return f1_score(true_positives, false_positives, false_negatives)


def _key_score(truth, guess) -> float:
    if truth.tonic == guess.tonic and truth.is_major == guess.is_major:
        return 1.0
    if truth.is_major == guess.is_major and (guess.tonic - truth.tonic) % 12 in (5, 7):
        return 0.5
    if truth.is_major != guess.is_major:
        major, minor = (truth, guess) if truth.is_major else (guess, truth)
        if (major.tonic + 9) % 12 == minor.tonic:
            return 0.3
        if major.tonic == minor.tonic:
            return 0.2
    return 0.0


def key_harmony_score(p_music, t_music) -> float:
    """MV2H's harmony (key) score of transcription ``t_music`` against truth ``p_music``."""
    p_music.read_if_needed()
    t_music.read_if_needed()
    duration = p_music.__duration__
    truth = sorted(p_music.__keys__, key=lambda k: k.time)
    guess = sorted(t_music.__keys__, key=lambda k: k.time)
    if not truth or duration <= 0:
        return 0.0
    if not guess:
        return 0.0

    def regions(keys):
        ends = [k.time for k in keys[1:]] + [duration]
        return [
            (max(k.time, 0) if i else 0, min(e, duration), k)
            for i, (k, e) in enumerate(zip(keys, ends, strict=True))
        ]

    total = 0.0
    for t_start, t_end, t_key in regions(truth):
        for g_start, g_end, g_key in regions(guess):
            overlap = min(t_end, g_end) - max(t_start, g_start)
            if overlap > 0:
                total += overlap * _key_score(t_key, g_key)
    return total / duration


@contextlib.contextmanager
def patched():
    """Use the fast equivalents and the fixed harmony score inside pyMV2H for the block."""
    with (
        mock.patch.object(_multi_pitch, "match_note_list", fast_match_note_list),
        mock.patch.object(_voice, "match_note_list", fast_match_note_list),
        mock.patch.object(_mv2h, "meter_score", fast_meter_score),
        mock.patch.object(_mv2h, "harmony_score", key_harmony_score),
    ):
        yield
