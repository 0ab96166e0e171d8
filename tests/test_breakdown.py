"""The offset/voice error breakdown on the builders' piece, with known changes."""

from dataclasses import replace

import numpy as np
from builders import build_part, write_musicxml

from perf2score.evaluate.breakdown import error_breakdown
from perf2score.evaluate.muster import evaluate_scores
from perf2score.score.reading import read_score


def _gt(tmp_path):
    return read_score(write_musicxml(build_part(), tmp_path / "gt.musicxml"))


def test_a_score_against_itself_has_no_errors_and_known_end_classes(tmp_path):
    gt = _gt(tmp_path)
    counts = error_breakdown(gt, gt)
    # own voice: C5 D5 Eb5 C3 G3 A3; another voice's onset: Bb3 (E-flat 5 starts there)
    # and the grace note before E-flat 5; nothing: G4 and the C4-E4 chord at the end
    assert (counts["gt_own"], counts["gt_other"], counts["gt_rest"]) == (6, 2, 3)
    assert sum(v for k, v in counts.items() if k.startswith(("short", "long", "voice_"))) == 0
    assert counts["gt_multi_voice_share"] == counts["est_multi_voice_share"] > 0


def test_a_shortened_value_and_merged_voices_are_classified(tmp_path):
    gt = _gt(tmp_path)
    notes = gt.notes.copy()
    eflat = np.flatnonzero(notes["pitch"] == 75)[0]
    notes["offset_ticks"][eflat] -= gt.ticks_per_quarter  # a quarter too short
    staff2 = notes["hand"] == 1
    notes["voice"][staff2] = notes["voice"][staff2].min()  # one voice per staff
    est = replace(gt, notes=notes)
    counts = error_breakdown(gt, est)
    assert counts["short_own"] == 1 and counts["long_own"] == 0
    assert sum(counts[f"{d}_{c}"] for d in ("short", "long") for c in ("own", "other", "rest")) == (
        evaluate_scores(gt, est).n_offset_errors
    )
    assert counts["voice_polyphonic"] > 0 and counts["voice_monophonic"] == 0
    assert counts["est_multi_voice_share"] < counts["gt_multi_voice_share"]
