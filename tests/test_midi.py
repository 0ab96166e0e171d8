import numpy as np
import pytest
from builders import write_midi

from perf2score import Perf2ScoreError, read_performance


def test_tracks_merged_sorted_drums_skipped_and_overlaps_kept(tmp_path):
    path = write_midi(
        tmp_path / "p.mid",
        tracks=[
            [(64, 1.0, 1.5, 70), (60, 0.0, 2.0, 60), (60, 0.5, 0.8, 50)],  # overlapping C4s
            [(48, 0.0, 1.0, 40)],
        ],
        drums=[[(36, 0.2, 0.3, 100)]],
        pedal=[(0.1, 127), (0.9, 0), (1.2, 100)],
    )
    perf = read_performance(path)
    assert perf.notes["pitch"].tolist() == [48, 60, 60, 64]
    np.testing.assert_allclose(perf.notes["onset_sec"], [0.0, 0.0, 0.5, 1.0], atol=1e-3)
    # MIDI cannot tell which note-off ends which of two sounding C4s: they pair first-in,
    # first-out, so both notes survive with offsets 0.8 and 2.0
    np.testing.assert_allclose(perf.notes["offset_sec"], [1.0, 0.8, 2.0, 1.5], atol=1e-3)
    assert 36 not in perf.notes["pitch"]
    # pedal: down 0.1-0.9, and down from 1.2 until the end of the file
    assert perf.pedal.shape == (2, 2)
    np.testing.assert_allclose(perf.pedal[0], [0.1, 0.9], atol=1e-3)
    assert perf.pedal[1, 0] == pytest.approx(1.2, abs=1e-3)
    notes = list(perf)
    assert notes[0].pitch == 48 and notes[0].velocity == 40


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"RIFF0000WAVEfmt ", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\xff\xff", "cannot parse"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(Perf2ScoreError, match=message):
        read_performance(path)


def test_no_notes_and_drums_only(tmp_path):
    with pytest.raises(Perf2ScoreError, match="no \\(non-drum\\) notes"):
        read_performance(write_midi(tmp_path / "empty.mid", tracks=[[]]))
    with pytest.raises(Perf2ScoreError, match="no \\(non-drum\\) notes"):
        read_performance(write_midi(tmp_path / "drums.mid", tracks=[], drums=[[(36, 0, 1, 90)]]))
    with pytest.raises(Perf2ScoreError, match="no such file"):
        read_performance(tmp_path / "missing.mid")
