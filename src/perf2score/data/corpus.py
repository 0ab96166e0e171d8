"""The piano score corpus (``scores-corpus.tar.xz``) as score-LM pre-training tables.

Every MusicXML score of the corpus manifest is read with ``score_targets`` (partitura,
maximally unfolded) into one ``ATTRIBUTE_DTYPE`` table, cached as
``<cache>/scores/<id>.npz`` with an ``index.csv`` (id, group, notes) and a ``report.json``
that lists every skipped score with its reason. Works of the ASAP validation split are
skipped too (``validation_works``), so validation measures unseen music; the corpus itself
already excludes every test piece.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perf2score.data.archives import resolve_dataset
from perf2score.data.cache import atomic_save_npz, load_index
from perf2score.errors import Perf2ScoreError
from perf2score.files import atomic_write
from perf2score.parallel import parallel_map

CORPUS_INDEX_FIELDS = ["id", "group", "n_notes", "ticks_per_quarter"]
BEETHOVEN_SONATA = re.compile(r"Beethoven/Piano_Sonatas/(\d+)-(\d+)")


@dataclass(frozen=True)
class CorpusJob:
    corpus_id: str
    source: Path
    out: Path


def validation_works(prepared_cache: str | os.PathLike | None) -> list[re.Pattern]:
    """Patterns of corpus ids that are works of the prepared cache's validation split.

    The corpus names Beethoven sonata movements ``NN-M`` (DCML) or ``sonataNN-M`` (kern);
    the other validation pieces (WTC, Chopin études, Liszt, Schubert impromptus) are not in
    the corpus.
    """
    if prepared_cache is None:
        return []
    pieces = {r["piece"] for r in load_index(prepared_cache, "validation")}
    patterns = []
    for piece in sorted(pieces):
        match = BEETHOVEN_SONATA.search(piece)
        if match:
            number, movement = int(match.group(1)), int(match.group(2))
            patterns.append(re.compile(rf"beethoven.*/(sonata)?0*{number}-{movement}$"))
    return patterns


def read_manifest(root: Path) -> list[dict]:
    path = root / "manifest.csv"
    if not path.is_file():
        raise Perf2ScoreError(f"{root}: not a score corpus (no manifest.csv)")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _prepare_one(job: CorpusJob) -> tuple[str, dict | None, str]:
    from perf2score.data.targets import score_targets

    if job.out.is_file():
        with np.load(job.out) as data:
            return job.corpus_id, {"n": len(data["table"]), "tpq": int(data["tpq"])}, ""
    try:
        table, tpq, anacrusis = score_targets(job.source)
    except Exception as exc:  # partitura raises many kinds; each skip is reported
        return job.corpus_id, None, f"{type(exc).__name__}: {exc}"[:200]
    if len(table) == 0:
        return job.corpus_id, None, "no notes"
    table = table[~table["tie_stop"]]  # tied continuations are not notes of the LM
    atomic_save_npz(job.out, table=table, tpq=np.int64(tpq), anacrusis=np.int64(anacrusis))
    return job.corpus_id, {"n": len(table), "tpq": tpq}, ""


def prepare_corpus(
    corpus: str | os.PathLike,
    out: str | os.PathLike,
    prepared_cache: str | os.PathLike | None = None,
    workers: int = 2,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Read every corpus score into ``out``; return the report (also written as JSON)."""
    out = Path(out)
    root = resolve_dataset(corpus, out / "_extracted")
    rows = read_manifest(root)
    excluded = validation_works(prepared_cache)
    jobs, skipped = [], []
    for row in rows[:limit]:
        corpus_id = row["id"]
        if any(p.search(corpus_id.lower()) for p in excluded):
            skipped.append((corpus_id, "work of the validation split"))
            continue
        jobs.append(
            CorpusJob(corpus_id, root / row["musicxml"], out / "scores" / f"{corpus_id}.npz")
        )
    index = []
    for corpus_id, result, error in parallel_map(_prepare_one, jobs, workers, "corpus", progress):
        if result is None:
            skipped.append((corpus_id, error))
        else:
            group = corpus_id.split("/")[0]
            index.append(
                {
                    "id": corpus_id,
                    "group": group,
                    "n_notes": result["n"],
                    "ticks_per_quarter": result["tpq"],
                }
            )
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CORPUS_INDEX_FIELDS)
    writer.writeheader()
    writer.writerows(sorted(index, key=lambda r: r["id"]))
    atomic_write(out / "index.csv", buffer.getvalue())
    report = {
        "scores": len(index),
        "notes": int(sum(r["n_notes"] for r in index)),
        "skipped": len(skipped),
        "skipped_scores": [{"id": i, "reason": r} for i, r in skipped],
    }
    atomic_write(out / "report.json", json.dumps(report, indent=2))
    return report


def load_corpus_index(cache: str | os.PathLike) -> list[dict]:
    path = Path(cache) / "index.csv"
    if not path.is_file():
        raise Perf2ScoreError(f"{cache}: not a prepared corpus (no index.csv); run `data corpus`")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def load_corpus_score(cache: str | os.PathLike, corpus_id: str) -> tuple[np.ndarray, int]:
    """(table without tied continuations, ticks per quarter) of one corpus score."""
    with np.load(Path(cache) / "scores" / f"{corpus_id}.npz") as data:
        return data["table"], int(data["tpq"])
