"""SqliteCheckpoint: intent and completion per unique_ref_no, per target and run, on disk."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from enkash_async.sync import CheckpointError, Claim, RefState, SqliteCheckpoint, SyncTarget

REAL = SyncTarget.for_user("https://api.enkash.example", "ops")
FAKE = SyncTarget.for_user("fake+http://127.0.0.1:8080", "ops")


async def test_a_ref_goes_from_unknown_to_intended_to_done(tmp_path: Path) -> None:
    store = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    assert await store.states(["A"]) == {}
    await store.mark_intended(["A"])
    assert await store.states(["A"]) == {"A": RefState.INTENDED}
    await store.mark_done("A", "KC1")
    assert await store.states(["A"]) == {"A": RefState.DONE}
    await store.aclose()


async def test_what_was_recorded_survives_closing_and_reopening(tmp_path: Path) -> None:
    store = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    await store.mark_intended(["A", "B"])
    await store.mark_done("A", "KC1")
    await store.aclose()

    again = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    assert await again.states(["A", "B", "C"]) == {"A": RefState.DONE, "B": RefState.INTENDED}
    assert await again.customer_ids(["A"]) == {"A": "KC1"}
    await again.aclose()


async def test_marking_a_done_ref_intended_leaves_it_done(tmp_path: Path) -> None:
    store = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    await store.mark_done("A", "KC1")
    await store.mark_intended(["A"])
    assert await store.states(["A"]) == {"A": RefState.DONE}
    await store.aclose()


async def test_targets_and_runs_never_share_state(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    real = SqliteCheckpoint(path, REAL)
    await real.mark_done("A", "KC1")
    await real.aclose()

    for other in (SqliteCheckpoint(path, FAKE), SqliteCheckpoint(path, REAL, run="nightly")):
        assert await other.states(["A"]) == {}
        await other.aclose()


async def test_many_refs_are_asked_in_one_call(tmp_path: Path) -> None:
    store = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    refs = [f"R-{i}" for i in range(3000)]
    await store.mark_intended(refs)
    states = await store.states(refs)
    assert len(states) == 3000
    await store.aclose()


def test_the_target_names_no_secret() -> None:
    token = "tok-secret-value"
    assert token not in SyncTarget.for_token("https://api.enkash.example", token).key


async def test_a_ref_another_live_store_intends_is_held_not_claimed(tmp_path: Path) -> None:
    first = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    second = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    assert await first.claim(["A", "B"]) == {"A": Claim.NEW, "B": Claim.NEW}
    assert await second.claim(["A", "C"]) == {"A": Claim.HELD, "C": Claim.NEW}
    await first.mark_done("A", "KC1")
    await first.flush()
    assert await second.claim(["A"]) == {"A": Claim.DONE}
    await first.aclose()
    await second.aclose()


async def test_the_intents_of_a_store_whose_lease_ran_out_are_reclaimed(tmp_path: Path) -> None:
    dead = SqliteCheckpoint(tmp_path / "c.sqlite", REAL, lease=0.2)
    await dead.claim(["A"])
    dead._renewer.cancel()  # type: ignore[union-attr]  # as if its process died
    alive = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    assert await alive.claim(["A"]) == {"A": Claim.HELD}
    await asyncio.sleep(0.3)
    assert await alive.claim(["A"]) == {"A": Claim.RECLAIMED}
    await alive.aclose()


async def test_a_live_store_keeps_its_intents_past_one_lease(tmp_path: Path) -> None:
    owner = SqliteCheckpoint(tmp_path / "c.sqlite", REAL, lease=0.3)
    await owner.claim(["A"])
    other = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    await asyncio.sleep(0.7)  # renewed every 0.1 s meanwhile
    assert await other.claim(["A"]) == {"A": Claim.HELD}
    await owner.aclose()
    await other.aclose()


async def test_a_closed_stores_intents_are_reclaimed_at_once(tmp_path: Path) -> None:
    first = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    await first.claim(["A"])
    await first.aclose()
    again = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    assert await again.claim(["A", "A"]) == {"A": Claim.RECLAIMED}
    assert await again.claim(["A"]) == {"A": Claim.RECLAIMED}  # its own, from a pass before
    await again.aclose()


async def test_a_file_from_before_intent_owners_opens_and_its_intents_are_reclaimed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE refs (target TEXT NOT NULL, run TEXT NOT NULL, ref TEXT NOT NULL, "
            "state TEXT NOT NULL, customer_id TEXT, PRIMARY KEY (target, run, ref)) WITHOUT ROWID"
        )
        db.execute("INSERT INTO refs VALUES (?, 'default', 'A', 'intended', NULL)", (REAL.key,))
        db.execute("INSERT INTO refs VALUES (?, 'default', 'B', 'done', 'KC2')", (REAL.key,))
    store = SqliteCheckpoint(path, REAL)
    assert await store.claim(["A", "B"]) == {"A": Claim.RECLAIMED, "B": Claim.DONE}
    await store.aclose()


@pytest.mark.parametrize("call", ["states", "claim"])
async def test_a_row_in_a_state_this_version_does_not_know_is_a_checkpoint_error(
    tmp_path: Path, call: str
) -> None:
    store = SqliteCheckpoint(tmp_path / "c.sqlite", REAL)
    await store.mark_intended(["A"])
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        db.execute("UPDATE refs SET state='archived'")

    with pytest.raises(CheckpointError, match=r"'archived'.*does not know"):
        await getattr(store, call)(["A"])
    await store.aclose()
