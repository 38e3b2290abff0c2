"""Shared fixtures: where the real data lives."""

from __future__ import annotations

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
