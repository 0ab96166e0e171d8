"""Shared fixtures: generated scores, and the real dataset when ../shared/data is present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PERF2SCORE_DATA", REPO.parent / "shared" / "data"))
# extracted archives are kept between test runs (git-ignored)
TEST_CACHE = REPO / ".cache" / "test-data"


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"needs the shared dataset: {path} is absent")


def _extracted(archive_name: str) -> Path:
    from perf2score.data.archives import resolve_dataset

    archive = SHARED_DATA / archive_name
    _need(archive)
    return resolve_dataset(archive, TEST_CACHE)


@pytest.fixture(scope="session")
def asap_dir() -> Path:
    return _extracted("asap-m2st.tar.xz")


@pytest.fixture(scope="session")
def nasap_dir() -> Path:
    return _extracted("nasap.tar.xz")


@pytest.fixture(scope="session")
def calibration_dir() -> Path:
    return _extracted("calibration-musescore3-test.tar.xz")


@pytest.fixture(scope="session")
def splits_csv() -> Path:
    path = SHARED_DATA / "splits" / "asap_splits.csv"
    _need(path)
    return path
