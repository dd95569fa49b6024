"""The checkpoint's intent lease: a constructor argument, else one environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from enkash_async.errors import ValidationError
from enkash_async.sync import SqliteCheckpoint, SyncTarget

REAL = SyncTarget.for_user("https://api.enkash.example", "ops")


async def test_the_lease_is_30_seconds_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENKASH_SYNC_LEASE_SECONDS", raising=False)
    store = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    assert store.lease == 30.0
    await store.aclose()


async def test_the_environment_sets_the_lease_of_a_store_given_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENKASH_SYNC_LEASE_SECONDS", "2.5")
    store = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    given = SqliteCheckpoint(tmp_path / "c.sqlite", REAL, lease=7)
    assert (store.lease, given.lease) == (2.5, 7)
    await store.aclose()
    await given.aclose()


@pytest.mark.parametrize("text", ["0", "-1", "soon", "inf", "nan"])
def test_a_lease_that_is_not_a_positive_number_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("ENKASH_SYNC_LEASE_SECONDS", text)
    with pytest.raises(ValidationError, match="ENKASH_SYNC_LEASE_SECONDS"):
        SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
