"""Where the EnKash seed pages (the API's specification) live for the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def seed_dir() -> Path:
    """``$ENKASH_SEEDS``, else ``../shared/seeds`` beside the repository (as CI lays it out)."""
    for candidate in (
        os.environ.get("ENKASH_SEEDS"),
        Path(__file__).resolve().parents[2] / "shared" / "seeds",
    ):
        if candidate and Path(candidate, "README.md").is_file():
            return Path(candidate)
    pytest.fail("the EnKash seed pages are missing: set ENKASH_SEEDS or place ../shared/seeds")
