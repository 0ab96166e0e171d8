"""Atomic file writes: readers never see half a file, an interrupted write leaves none.

Temporary files being written are registered in ``PENDING`` so that a process ended by a
signal (see ``perf2score.parallel``) can remove them before it exits.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PENDING: set[str] = set()  # temporary files this process is writing right now


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    PENDING.add(tmp)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would create it (mkstemp makes 0600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        PENDING.discard(tmp)
    return path


def remove_pending() -> None:
    """Remove the temporary files of writes that have not finished (before exiting)."""
    for tmp in list(PENDING):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        PENDING.discard(tmp)


def check_writable(path: str | os.PathLike) -> None:
    """Raise ``OSError`` unless the file ``path`` could be written: it is not a folder and
    its folder exists and takes new files, or could be created (nothing is left behind)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a file", str(path))
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(20, "is not a folder", str(folder))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".perf2score-check.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
