"""``perf2score data prepare``: build note-aligned training targets from ASAP + (n)ASAP.

For every performance of the split file: read its notes (``perf2score.midi``), map each row
of its (n)ASAP note alignment onto them by (pitch, onset), and point each performed note at
its note in the piece's unfolded score table (``targets.score_targets``); performed notes
without a score partner are ``drop``; score notes never played are ``missing``.
Work is parallel over pieces; finished pieces are kept, so a re-run only does what is new.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perf2score.constants import GRID_PER_QUARTER
from perf2score.data.archives import resolve_dataset
from perf2score.data.cache import (
    atomic_save_npz,
    performance_path,
    score_path,
    write_index,
    write_sources,
)
from perf2score.data.targets import score_targets
from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.midi import read_performance
from perf2score.parallel import parallel_map

log = logging.getLogger(__name__)

SPLIT_COLUMN = "m2st_split"
SPLITS = ("train", "validation", "test")
ONSET_MATCH_SEC = 0.005  # alignment TSV onsets vs our reader's onsets
CACHE_VERSION = 2  # 2: staves by hand across parts (score.reading.staff_hands)


@dataclass
class PieceJob:
    piece: str
    score_file: Path
    performances: list[tuple[str, str, Path, Path, bool]]  # perf_id, split, midi, tsv, robust
    cache: Path
    force: bool = False


@dataclass
class PieceResult:
    piece: str
    rows: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    grid: dict[str, list[int]] = field(default_factory=dict)  # attr -> [off-grid, total]


def read_alignment(path: Path) -> list[tuple[str, str, int, float]]:
    """Rows (xml_id, midi_id, pitch, onset_sec) of an (n)ASAP note_alignment.tsv.

    ``xml_id`` is ``insertion`` for unaligned performed notes; ``midi_id`` is ``deletion``
    for unplayed score notes (then pitch and onset are -1 / nan).
    """
    rows = []
    with open(path, newline="") as handle:
        for rec in csv.DictReader(handle, delimiter="\t"):
            midi_id = rec["midi_id"]
            if midi_id == "deletion":
                rows.append((rec["xml_id"], midi_id, -1, float("nan")))
            else:
                rows.append((rec["xml_id"], midi_id, int(rec["pitch"]), float(rec["onset"])))
    return rows


def map_alignment(notes: np.ndarray, rows, id_to_row: dict[str, int]) -> tuple[np.ndarray, int]:
    """Per performed note, the score-table row of its partner (-1 = none).

    Returns (score_index, unresolved) where ``unresolved`` counts alignment rows whose
    performed note or score id could not be found.
    """
    score_index = np.full(len(notes), -1, dtype=np.int64)
    by_pitch: dict[int, list[int]] = defaultdict(list)
    for k, p in enumerate(notes["pitch"].tolist()):
        by_pitch[p].append(k)
    used = np.zeros(len(notes), dtype=bool)
    unresolved = 0
    onsets = notes["onset_sec"]
    for xml_id, midi_id, pitch, onset in rows:
        if midi_id == "deletion":
            continue
        candidates = [k for k in by_pitch.get(pitch, ()) if not used[k]]
        if not candidates:
            unresolved += 1
            continue
        best = min(candidates, key=lambda k: abs(onsets[k] - onset))
        if abs(onsets[best] - onset) > ONSET_MATCH_SEC:
            unresolved += 1
            continue
        used[best] = True
        if xml_id == "insertion":
            continue
        row = id_to_row.get(xml_id)
        if row is None:
            unresolved += 1
            continue
        score_index[best] = row
    return score_index, unresolved


def _grid_counts(table: np.ndarray, tpq: int) -> dict[str, list[int]]:
    """How many attribute values fall off the 1/24-quarter grid, per attribute."""
    played = table[~table["tie_stop"]]
    out = {}
    for name in ("position_ticks", "duration_ticks", "measure_length_ticks"):
        values = played[name].astype(np.int64) * GRID_PER_QUARTER
        out[name] = [int(np.sum(values % tpq != 0)), len(values)]
    return out


def _stored_table(path: Path) -> tuple[np.ndarray, int] | None:
    """(table, ticks_per_quarter) of a score table stored by this ``CACHE_VERSION``, else None."""
    if not path.exists():
        return None
    with np.load(path) as stored:
        if "version" not in stored.files or int(stored["version"]) != CACHE_VERSION:
            return None
        return stored["table"], int(stored["ticks_per_quarter"])


def prepare_piece(job: PieceJob) -> PieceResult:
    """Prepare every performance of one piece (runs in a worker process)."""
    result = PieceResult(job.piece)
    spath = score_path(job.cache, job.piece)
    try:
        stored = _stored_table(spath) if not job.force else None
        if stored is not None:
            table, tpq = stored
        else:
            table, tpq, anacrusis = score_targets(job.score_file)
            atomic_save_npz(
                spath,
                table=table,
                ticks_per_quarter=np.int64(tpq),
                anacrusis_ticks=np.int64(anacrusis),
                version=np.int64(CACHE_VERSION),
            )
    except Perf2ScoreError as exc:
        for perf_id, *_ in job.performances:
            result.skipped.append((perf_id, f"score unreadable: {exc}"))
        return result
    result.grid = _grid_counts(table, tpq)
    id_to_row = {str(i): k for k, i in enumerate(table["id"])}
    playable = ~table["tie_stop"]

    for perf_id, split, midi_file, tsv_file, robust in job.performances:
        ppath = performance_path(job.cache, perf_id)
        try:
            if ppath.exists() and not job.force:
                with np.load(ppath) as stored:
                    n_notes = len(stored["notes"])
                    score_index = stored["score_index"]
                    missing = stored["missing"]
                    unresolved = int(stored["unresolved"])
            else:
                if not tsv_file.is_file():
                    raise Perf2ScoreError("no note alignment file")
                perf = read_performance(midi_file)
                score_index, unresolved = map_alignment(
                    perf.notes, read_alignment(tsv_file), id_to_row
                )
                played = np.zeros(len(table), dtype=bool)
                played[score_index[score_index >= 0]] = True
                missing = np.flatnonzero(playable & ~played)
                n_notes = len(perf.notes)
                atomic_save_npz(
                    ppath,
                    piece=np.str_(job.piece),
                    split=np.str_(split),
                    notes=perf.notes,
                    pedal=perf.pedal,
                    score_index=score_index,
                    missing=missing,
                    unresolved=np.int64(unresolved),
                )
        except Perf2ScoreError as exc:
            result.skipped.append((perf_id, str(exc)))
            continue
        n_aligned = int(np.sum(score_index >= 0))
        result.rows.append(
            {
                "perf_id": perf_id,
                "piece": job.piece,
                "split": split,
                "robust_alignment": int(robust),
                "n_notes": n_notes,
                "n_aligned": n_aligned,
                "n_drop": n_notes - n_aligned,
                "n_missing": len(missing),
                "n_unresolved": unresolved,
            }
        )
    return result


def _jobs(asap: Path, nasap: Path, splits_csv: Path, cache: Path, force: bool):
    robust: dict[str, bool] = {}
    meta = nasap / "metadata.csv"
    if meta.is_file():
        with open(meta, newline="") as handle:
            for rec in csv.DictReader(handle):
                robust[rec["midi_performance"]] = rec.get("robust_note_alignment") == "1.0"
    by_piece: dict[str, list] = defaultdict(list)
    skipped: list[tuple[str, str]] = []
    with open(splits_csv, newline="") as handle:
        records = list(csv.DictReader(handle))
    if not records or SPLIT_COLUMN not in records[0]:
        raise Perf2ScoreError(f"{splits_csv}: no '{SPLIT_COLUMN}' column")
    for rec in records:
        perf_id = rec["midi_performance"].removesuffix(".mid")
        split = rec[SPLIT_COLUMN]
        if split not in SPLITS:
            reason = rec.get("m2st_exclude_reason") or split
            skipped.append((perf_id, f"excluded from the split ({reason})"))
            continue
        midi = asap / rec["midi_performance"]
        if not midi.is_file():
            midi = nasap / rec["midi_performance"]
        tsv = nasap / f"{perf_id}_note_alignments" / "note_alignment.tsv"
        by_piece[rec["folder"]].append(
            (perf_id, split, midi, tsv, robust.get(rec["midi_performance"], False))
        )
    jobs = []
    for piece, perfs in sorted(by_piece.items()):
        score_file = nasap / piece / "xml_score.musicxml"
        if not score_file.is_file():
            skipped.extend((p[0], "no (n)ASAP MusicXML score") for p in perfs)
            continue
        jobs.append(PieceJob(piece, score_file, perfs, cache, force))
    return jobs, skipped


def prepare(
    asap: str | os.PathLike,
    nasap: str | os.PathLike,
    splits: str | os.PathLike,
    out: str | os.PathLike,
    workers: int = 2,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Prepare the whole dataset into ``out``; return the report (also saved as JSON)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    asap_dir = resolve_dataset(asap, out / "_extracted")
    nasap_dir = resolve_dataset(nasap, out / "_extracted")
    jobs, skipped = _jobs(asap_dir, nasap_dir, Path(splits), out, force)
    rows: list[dict] = []
    grid: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for res in parallel_map(prepare_piece, jobs, workers, "prepare", progress):
        rows.extend(res.rows)
        skipped.extend(res.skipped)
        if any(r["split"] in ("train", "validation") for r in res.rows):
            for name, (off, total) in res.grid.items():
                grid[name][0] += off
                grid[name][1] += total
    write_index(out, rows)
    write_sources(out, {"asap": str(asap_dir), "nasap": str(nasap_dir)})
    report = build_report(rows, skipped, grid)
    atomic_write(out / "report.json", json.dumps(report, indent=2))
    return report


def build_report(rows: list[dict], skipped: list[tuple[str, str]], grid) -> dict:
    """Counts per split, alignment coverage, skip reasons and the 1/24-grid loss."""
    per_split = Counter(r["split"] for r in rows)
    notes = sum(r["n_notes"] for r in rows)
    aligned = sum(r["n_aligned"] for r in rows)
    missing = sum(r["n_missing"] for r in rows)
    reasons = Counter(reason.split(":")[0] for _, reason in skipped)
    return {
        "processed": len(rows),
        "per_split": dict(per_split),
        "robust_alignment": sum(r["robust_alignment"] for r in rows),
        "skipped": len(skipped),
        "skip_reasons": dict(reasons),
        "skipped_performances": [{"perf_id": p, "reason": r} for p, r in sorted(skipped)],
        "performed_notes": notes,
        "aligned_notes": aligned,
        "drop_notes": notes - aligned,
        "coverage_performed_aligned_pct": 100.0 * aligned / notes if notes else 0.0,
        "missing_score_notes": missing,
        "coverage_score_played_pct": 100.0 * aligned / (aligned + missing) if aligned else 0.0,
        "unresolved_alignment_rows": sum(r["n_unresolved"] for r in rows),
        "off_grid_1_24_train_validation_scores": {
            name: {"off_grid": off, "total": total, "pct": 100.0 * off / total if total else 0.0}
            for name, (off, total) in grid.items()
        },
    }


def format_report(report: dict) -> str:
    """A short human-readable summary of ``build_report``'s dict."""
    lines = [
        f"performances processed: {report['processed']} {report['per_split']}"
        f" (robust alignment: {report['robust_alignment']})",
        f"skipped: {report['skipped']} {report['skip_reasons']}",
        f"performed notes: {report['performed_notes']}, aligned "
        f"{report['coverage_performed_aligned_pct']:.2f}%, drop {report['drop_notes']}",
        f"score notes played: {report['coverage_score_played_pct']:.2f}%"
        f" (missing {report['missing_score_notes']}),"
        f" unresolved alignment rows: {report['unresolved_alignment_rows']}",
    ]
    for name, stats in report["off_grid_1_24_train_validation_scores"].items():
        lines.append(
            f"off the 1/24-quarter grid ({name}): {stats['off_grid']}/{stats['total']}"
            f" = {stats['pct']:.3f}%"
        )
    return "\n".join(lines)
