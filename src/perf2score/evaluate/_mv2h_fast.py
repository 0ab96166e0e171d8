"""Fast, exactly equivalent replacements for pyMV2H's two quadratic hot spots.

pyMV2H matches notes (``match_note_list``) and metrical groupings (in ``meter_score``) by
scanning whole lists for every element: minutes on a 5,000-note piece. The functions here
return the same matches in the same order (first remaining candidate in list order), using
per-pitch and per-time-bucket indexes. ``patched()`` installs them for the duration of one
evaluation only; ``tests/test_mv2h.py`` checks that results equal unpatched pyMV2H.
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


@contextlib.contextmanager
def patched():
    """Use the fast equivalents inside pyMV2H while the block runs."""
    with (
        mock.patch.object(_multi_pitch, "match_note_list", fast_match_note_list),
        mock.patch.object(_voice, "match_note_list", fast_match_note_list),
        mock.patch.object(_mv2h, "meter_score", fast_meter_score),
    ):
        yield
