import json

from builders import build_part, write_musicxml

from perf2score.cli import main
from perf2score.evaluate.muster import ERROR_RATES


def test_evaluate_json_identical(tmp_path, capsys):
    path = write_musicxml(build_part(), tmp_path / "gt.musicxml")
    assert main(["evaluate", str(path), str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ERROR_RATES:
        assert result[key] == 0.0, key
    assert result["mv2h"] == 1.0


def test_evaluate_detects_a_missing_note(tmp_path, capsys):
    from builders import PIECE

    gt = write_musicxml(build_part(), tmp_path / "gt.musicxml")
    est = write_musicxml(build_part(notes=PIECE[:-1]), tmp_path / "est.musicxml")
    assert main(["evaluate", str(gt), str(est), "--json", "--no-mv2h"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["missing_rate"] == 100 / 11 and result["extra_rate"] == 0.0
    assert "mv2h" not in result


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "a.xml"), str(tmp_path / "b.xml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("perf2score: error:") and err.count("\n") == 1
    assert main(["evaluate", "--data", str(tmp_path)]) == 2
    assert "needs both" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tmp_path), "--predictions", str(tmp_path)]) == 2
    assert "not a prepared cache" in capsys.readouterr().err


def test_midi_conversion_asks_for_one_math_thread(monkeypatch):
    import sys

    from perf2score.cli import one_math_thread

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as in a fresh CLI process
    assert not one_math_thread(["take.wav", "a.mid"]), "recordings keep the default"
    assert "OMP_NUM_THREADS" not in __import__("os").environ
    assert one_math_thread(["a.mid", "folder"])
    assert __import__("os").environ["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert not one_math_thread(["a.mid"]), "the user's setting wins"
    assert __import__("os").environ["OMP_NUM_THREADS"] == "2"
