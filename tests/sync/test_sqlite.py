"""SqliteCheckpoint: intent and completion per unique_ref_no, per target and run, on disk."""

from __future__ import annotations

from pathlib import Path

from enkash_async.sync import RefState, SqliteCheckpoint, SyncTarget

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
