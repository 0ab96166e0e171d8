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


def test_serve_asks_for_one_blas_thread(monkeypatch):
    """serve's workers decode in threads of one process: with BLAS's default two threads
    each, a 1,000-note conversion through the page took 3.7-11.5 s beside two CPU-bound
    processes, against 1.7-1.9 s with one; a user's OMP_NUM_THREADS wins."""
    import perf2score.parallel
    import perf2score.web.app
    from perf2score.cli import main

    limited, served = [], []
    monkeypatch.setattr(perf2score.parallel, "one_blas_thread", lambda: limited.append(True))
    monkeypatch.setattr(perf2score.web.app, "serve", lambda *a, **k: served.append(True))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert main(["serve"]) == 0
    assert limited == [True] and served == [True]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert main(["serve"]) == 0
    assert limited == [True] and served == [True, True]


def test_predict_asks_for_one_math_thread(monkeypatch, tmp_path):
    """predict decodes in this process (--workers 1) and in forked children: with BLAS's
    default two threads beside them a busy machine ran it 12x slower (6 validation
    performances beside two CPU-bound processes: 132 s against 11 s with one thread)."""
    import sys

    import perf2score.parallel
    import perf2score.predict
    from perf2score.cli import main

    limited = []
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(perf2score.parallel, "one_math_thread", lambda: limited.append(True))
    done = {"failures": {}, "notes": 10, "notes_per_second": 5.0}
    monkeypatch.setattr(perf2score.predict, "predict_split", lambda *a, **k: done)
    args = ["predict", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "1"]
    assert main(args) == 0
    assert limited == [True]
