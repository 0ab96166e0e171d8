"""Locate a dataset given as a folder or as a ``.tar.xz`` archive (extracted once)."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from perf2score.errors import Perf2ScoreError

# The folder each archive of ../shared/data unpacks to.
ARCHIVE_ROOTS = {
    "asap-m2st.tar.xz": "asap-m2st",
    "nasap.tar.xz": "nasap",
    "calibration-musescore3-test.tar.xz": "musescore3-asap-test",
    "scores-corpus.tar.xz": ".",  # manifest.csv beside scores/
}


def resolve_dataset(path: str | os.PathLike, extract_to: str | os.PathLike) -> Path:
    """Return the dataset folder for ``path``.

    A folder is returned as it is. A ``.tar.xz`` archive is extracted into ``extract_to``
    (once: a marker file records a finished extraction, so an interrupted one is redone)
    and the folder it unpacks to is returned.
    """
    path = Path(path)
    if path.is_dir():
        return path
    if not path.is_file():
        raise Perf2ScoreError(f"{path}: no such file or folder")
    if not path.name.endswith((".tar.xz", ".tar.gz", ".tar")):
        raise Perf2ScoreError(f"{path}: expected a folder or a .tar.xz archive")
    extract_to = Path(extract_to)
    stem = path.name.split(".tar")[0]
    dest = extract_to / stem
    marker = dest / ".extracted"
    if not marker.exists():
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        try:
            with tarfile.open(path) as archive:
                archive.extractall(dest, filter="data")  # rejects absolute paths and links out
        except (tarfile.TarError, OSError, EOFError) as exc:  # FilterError is a TarError
            raise Perf2ScoreError(f"{path}: cannot extract ({exc})") from exc
        marker.touch()
    root = ARCHIVE_ROOTS.get(path.name, stem)
    if (dest / root).is_dir():
        return dest / root
    children = [c for c in dest.iterdir() if c.is_dir()]
    return children[0] if len(children) == 1 else dest
