"""Shared fixtures: where the real data lives."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BUNDLED_DATA = REPO / "tests" / "data"  # a copy of the same real data, with its licenses


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real shared data (mocap, music): ../shared/data, else the repo's copy."""
    for path in (SHARED_DATA, BUNDLED_DATA):
        if (path / "mocap").is_dir():
            return path
    pytest.skip(f"real data found neither at {SHARED_DATA} nor at {BUNDLED_DATA}")


@pytest.fixture(scope="session")
def tiny_data(shared_data, tmp_path_factory):
    """Two real salsa takes (lead and follow) as a two-style training folder."""
    root = tmp_path_factory.mktemp("mocap")
    for style, take in (("lead", "60_05_scaled.bvh.gz"), ("follow", "61_05_scaled.bvh.gz")):
        (root / style).mkdir()
        shutil.copy(shared_data / "mocap" / "cmu_salsa" / take, root / style / take)
    return root
