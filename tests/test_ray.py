"""Batch conversion on a local Ray instance: the plain batch's outputs, the manifest, re-runs.

Needs the ``ray`` extra; skips with the reason where it is absent, except in CI
(``PERF2SCORE_REQUIRE_RAY=1``, set by ``.ci/run``), where it must run.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from builders import write_midi

from perf2score.batch_convert import plan, run

if importlib.util.find_spec("ray") is None:
    if os.environ.get("PERF2SCORE_REQUIRE_RAY") == "1":
        raise RuntimeError("the Ray test is required in CI but ray is not installed")
    pytest.skip("the 'ray' extra is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_instance():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def _folder(root: Path) -> Path:
    root.mkdir()
    for k in range(3):
        notes = [(60 + (j * (k + 2)) % 12, 0.4 * j, 0.4 * j + 0.35, 70) for j in range(40)]
        bass = [(43 + (j % 3) * 5, 0.8 * j, 0.8 * j + 0.7, 60) for j in range(20)]
        write_midi(root / f"piece{k}.mid", tracks=[notes, bass])
    (root / "broken.mid").write_bytes(b"not a MIDI file")
    return root


def test_ray_gives_the_plain_batch_outputs_and_skips_finished_files(ray_instance, tmp_path):
    from perf2score.batch_ray import finished, run_on_ray

    inputs = _folder(tmp_path / "in")
    plain_jobs, _ = plan([str(inputs)], None, str(tmp_path / "plain"), ["musicxml"], "neural")
    plain = {Path(o.source).name: o for o in run(plain_jobs, workers=2, progress=False)}
    jobs, _ = plan([str(inputs)], None, str(tmp_path / "ray"), ["musicxml"], "neural")
    manifest = tmp_path / "ray" / "manifest.jsonl"
    outcomes = {Path(o.source).name: o for o in run_on_ray(jobs, manifest, actors=2)}

    assert (
        sorted(outcomes)
        == sorted(plain)
        == ["broken.mid", "piece0.mid", "piece1.mid", "piece2.mid"]
    )
    assert "not a MIDI file" in outcomes["broken.mid"].error, "a bad file is reported, not fatal"
    for name in ("piece0", "piece1", "piece2"):
        ours = (tmp_path / "ray" / f"{name}.musicxml").read_bytes()
        assert ours == (tmp_path / "plain" / f"{name}.musicxml").read_bytes(), name
    records = finished(manifest)
    assert len(records) == 4
    assert {r["status"] for r in records.values()} == {"ok", "failed"}

    # a re-run converts only the failed file
    again = [Path(o.source).name for o in run_on_ray(jobs, manifest, actors=2)]
    assert again == ["broken.mid"]
    # a changed input and a deleted output are converted again; a torn line is ignored
    with open(manifest, "a") as log:
        log.write('{"input": "/x", "sta')
    source = inputs / "piece1.mid"
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    (tmp_path / "ray" / "piece2.musicxml").unlink()
    again = sorted(Path(o.source).name for o in run_on_ray(jobs, manifest, actors=2))
    assert again == ["broken.mid", "piece1.mid", "piece2.mid"]
    assert all(json.loads(line) for line in manifest.read_text().splitlines()[:4])


def test_the_cli_runs_on_ray_and_reports_the_manifest(ray_instance, tmp_path, capsys):
    from perf2score.cli import main

    inputs = _folder(tmp_path / "in")
    out = tmp_path / "out"
    args = ["-q", "convert", str(inputs), "--out-dir", str(out), "--backend", "classical"]
    assert main([*args, "--ray", "--workers", "2"]) == 2  # the broken file
    first = capsys.readouterr()
    assert first.out.count(".musicxml") == 3 and "converted 3/4 files" in first.err
    assert (out / "perf2score-manifest.jsonl").is_file()
    assert main([*args, "--ray", "--workers", "2"]) == 2
    second = capsys.readouterr()
    assert "3 file(s) already converted" in second.err and second.out == ""
    assert main([*args, "--manifest", str(tmp_path / "m.jsonl")]) == 2
    assert "--manifest goes with --ray" in capsys.readouterr().err
