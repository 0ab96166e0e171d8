"""Benchmark scripts that are not run in the tests: what they build and time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark(name: str = "vs_musescore"):
    sys.path.insert(0, str(BENCHMARKS))  # vs_musescore imports its sibling convert_speed
    try:
        path = BENCHMARKS / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_the_benchmark_times_each_beam_width_it_is_given(tmp_path):
    commands = _benchmark().commands
    shipped = commands(Path("in.mid"), tmp_path, musescore=False)
    assert list(shipped) == ["perf2score neural", "perf2score classical"]
    assert "--beam" not in shipped["perf2score neural"]
    widths = commands(Path("in.mid"), tmp_path, musescore=True, beams=[2, 4])
    assert list(widths) == [
        "perf2score beam 2",
        "perf2score beam 4",
        "perf2score classical",
        "MuseScore 3",
    ]
    assert widths["perf2score beam 4"][-4:] == ["--backend", "neural", "--beam", "4"]
    assert widths["MuseScore 3"][0] == "mscore3"


def test_the_step_parts_are_a_blocks_operations_on_the_rows_asked():
    """``benchmarks/step_parts.py``: each timed operation runs and gives the rows asked."""
    from perf2score import load_neural_model

    step_parts = _benchmark("step_parts")
    network = load_neural_model().network
    parts = step_parts.block_parts(network, rows=6, beam=3, note=5)
    assert "attention over the KV cache" in parts and "GELU" in parts
    for name, call in parts.items():
        out = call()
        assert out.shape[0] == 6, name
        assert np.isfinite(out).all(), name
    assert step_parts.timed(lambda: None, 3) >= 0.0


def test_value_choice_labels_options_by_the_evaluator_s_offset_rule():
    """benchmarks/value_choice.py: an option is right where it ends the note where the
    ground truth does; the current value is judged as written; a chooser that takes the
    voice's next onset fixes the one note the ground truth holds longer."""
    from types import SimpleNamespace

    sys.path.insert(0, str(BENCHMARKS.parent / "tests"))
    try:
        from test_value_choice import TPQ, _options, _piece, _preferring
    finally:
        sys.path.remove(str(BENCHMARKS.parent / "tests"))
    module = _benchmark("value_choice")
    attributes, onsets, onset_sec, release = _piece()
    options = _options(attributes, onsets, onset_sec, release)
    truth = np.zeros(
        len(attributes),
        dtype=[
            ("onset_ticks", np.int64),
            ("duration_ticks", np.int64),
            ("pitch", np.int16),
            ("is_grace", bool),
        ],
    )
    truth["onset_ticks"], truth["pitch"] = onsets, attributes["pitch"]
    truth["duration_ticks"] = attributes["duration_ticks"]
    truth["duration_ticks"][0] = 24  # the score holds the melody's first note a quarter
    prepared = SimpleNamespace(
        targets=lambda: truth, drop=np.zeros(len(truth), bool), ticks_per_quarter=TPQ
    )
    matched, right, now_right = module.option_labels(
        prepared, attributes, np.zeros(len(truth), bool), onsets, TPQ, options
    )
    assert matched.all()
    assert now_right.tolist() == [False] + [True] * 8
    first = np.flatnonzero(options.notes == 0)[0]
    assert right[first].tolist()[:2] == [False, True]  # onset 24, not 12
    notes = module.stacked(
        [
            {
                "features": options.features,
                "valid": options.valid,
                "right": right,
                "matched": matched,
                "now_right": now_right,
                "chords": options.chords,
            }
        ]
    )
    now, chosen = module.fixed_share(_preferring("is_voice_next"), notes, margin=0.5)
    assert round(now, 3) == round(100 / 9, 3) and chosen == 0.0
    draw = module.chord_batches(options.chords, batch=4)
    picked, local, size = draw()
    assert len(np.unique(options.chords[picked])) == size == local.max() + 1  # whole chords
    assert (np.diff(local) >= 0).all()  # each chord's notes together
    for chord in np.unique(options.chords[picked]):
        assert (options.chords[picked] == chord).sum() == (options.chords == chord).sum()


def test_voice_choice_labels_and_voice_errors_follow_the_evaluator_s_rule():
    """benchmarks/voice_choice.py: a note is labelled second where the ground truth writes it
    in another voice than the commonest of its staff in its measure; the voice errors are
    the matched notes whose voice successors differ, zero for the ground truth's own
    voices, and the rule's one voice per staff breaks the lines of a two-voice measure."""
    from types import SimpleNamespace

    from perf2score.score.attributes import ATTRIBUTE_DTYPE

    module = _benchmark("voice_choice")
    # one staff, one measure: a melody in half notes (voice 1) over quarters (voice 2);
    # voice 2 has more notes, so it is the measure's commonest
    onsets = np.array([0, 0, 24, 48, 48, 72])
    voice = np.array([1, 2, 2, 1, 2, 2])
    pitch = np.array([76, 67, 65, 77, 64, 62])
    truth = np.zeros(
        len(onsets),
        dtype=[
            ("onset_ticks", np.int64),
            ("staff", np.int8),
            ("voice", np.int16),
            ("measure", np.int32),
            ("is_grace", bool),
        ],
    )
    truth["onset_ticks"], truth["staff"], truth["voice"] = onsets, 1, voice
    prepared = SimpleNamespace(targets=lambda: truth, drop=np.zeros(len(truth), bool))
    attributes = np.zeros(len(onsets), dtype=ATTRIBUTE_DTYPE)
    attributes["staff"], attributes["pitch"] = 1, pitch
    attributes["staff"][5] = 2  # the decoding put the last note on the other staff
    matched, usable, second = module.voice_labels(prepared, attributes, np.zeros(6, bool))
    assert matched.all() and usable.tolist() == [True] * 5 + [False]
    assert second.tolist() == [True, False, False, True, False, False]  # voice 1: the fewer
    piece = {
        "matched": matched,
        "staff": np.ones(6, np.int64),
        "onsets": onsets,
        "truth_voice": voice.astype(np.int64),
        "truth_onsets": onsets,
    }
    assert module.voice_error_count(piece, voice) == 0  # the ground truth's own voices
    # one voice: the melody's first note is followed by the quarter at 24, not by its next
    # half note (wrong); the quarter at 0 by the one at 24 (right); the quarter at 24 by
    # both notes at 48, not its quarter alone (wrong); the melody's last note by the
    # quarter at 72, where its voice ends (wrong); the rest right
    assert module.voice_error_count(piece, np.ones(6, np.int64)) == 3
    assert module.voice_error_count(piece, np.where(second, 2, 1)) == 0
    assert module.successors(np.array([1, 1, 2]), np.array([0, 5, 0])) == [
        frozenset({1}),
        frozenset(),
        frozenset(),
    ]


def test_voice_links_labels_and_decisions_follow_the_ground_truth_s_lines():
    """benchmarks/voice_links.py: a pair is a link where the ground truth puts the later note
    among the earlier one's successors (at one onset: in one voice); a pair past the onset
    where the earlier note's voice went on teaches nothing; the tracker's decisions, taken
    on the ground truth's voices, offer each voice open on the staff and a new one, and the
    tracker on the ground truth's own links gives its voices back (no voice errors)."""
    from perf2score.neural.voice_links import link_pairs, staffed

    module = _benchmark("voice_links")
    choice = _benchmark("voice_choice")
    # one staff: a melody in half notes (voice 1) over quarters (voice 2)
    onsets = np.array([0, 0, 24, 48, 48, 72])
    voice = np.array([1, 2, 2, 1, 2, 2])
    pitch = np.array([76, 67, 65, 77, 64, 62])
    keep = np.ones(6, bool)
    grouped = staffed(onsets, np.ones(6, np.int64), pitch, keep)
    pairs = link_pairs(grouped, 4)
    piece = {
        "matched": keep,
        "usable": keep,
        "staff": np.ones(6, np.int64),
        "onsets": onsets,
        "keep": keep,
        "truth_voice": voice.astype(np.int64),
        "truth_onsets": onsets,
        "grouped": grouped,
        "pairs": pairs,
        "reach": 4,
    }
    label, usable = module.link_labels(piece, grouped, pairs)
    named = {
        (int(grouped.order[a]), int(grouped.order[b])): (bool(x), bool(u))
        for a, b, x, u in zip(*pairs[:2], label, usable, strict=True)
    }
    assert named[(0, 3)] == (True, True)  # the melody's half notes
    assert named[(0, 1)] == (False, True)  # at one onset, two voices
    assert named[(1, 2)] == (True, True) and named[(1, 4)] == (False, False)  # went on at 24
    assert named[(2, 4)] == (True, True) and named[(0, 2)] == (False, True)
    piece["link_labels"], piece["link_usable"] = label, usable
    assert choice.voice_error_count(piece, module.truth_voices(piece)) == 0
    pair, candidate, choices, answer = module.decisions(piece, 4)
    assert choices.shape == (6, module.WIDEST) and len(answer) == 6
    # the first note: only a new voice; the quarter at 24: the voices 1 and 2 open, and 2 is its
    assert (choices[0] == module.NEW).sum() == 1 and answer[0] == 0
    third = (choices[2] == 0).sum()
    assert third == 2 and answer[2] < third
    assert len(pair) == len(candidate) and (candidate // module.WIDEST < 6).all()
