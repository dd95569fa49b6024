"""The distributed sync is an upsert: a file edited and submitted again reaches EnKash,
with the run counting what was updated and what was left unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _dist import Workers, target_of, wire_row, write_rows
from test_distributed_sync import FAST, HEARTBEAT, wait_for
from test_sync_cli import sync

from enkash_async import EnkashClient
from enkash_async.sync.redis._runs import RunStatus, RunStore
from enkash_async.sync.redis._saq import submit
from enkash_async.testing import FakeEnkashProcess

ROWS = 200
EDITED = range(0, ROWS, ROWS // 10)  # 10 rows spread over every chunk


def row(i: int, *, edited: bool = False) -> dict[str, Any]:
    data = wire_row(i)
    data["address"] = f"{i} {'New' if edited else 'Old'} Market Road, Pune"
    data["customerKeyContacts"][0]["email"] = f"{'new' if edited else 'old'}.{i}@example.com"
    return data


async def in_enkash(fake: FakeEnkashProcess) -> dict[str, Any]:
    """Every customer the fake holds, by ``uniqueRefNo``."""
    async with EnkashClient(fake.url, token=fake.token) as client:
        return {customer.unique_ref_no: customer async for customer in client.customers.search()}


@pytest.mark.slow
async def test_a_file_edited_and_submitted_again_updates_the_edited_rows_only(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess().start()
    try:
        status = await sync_twice(
            redis_url,
            workers,
            tmp_path,
            fake,
            [row(i) for i in range(ROWS)],
            [row(i, edited=i in EDITED) for i in range(ROWS)],
            chunk_rows=50,
        )
        stats = fake.stats()
        customers = await in_enkash(fake)
    finally:
        fake.stop()

    counts = {kind: status.counts.get(kind, 0) for kind in status.counts}
    assert counts == {
        "created": 0,
        "updated": 10,
        "unchanged": ROWS - 10,
        "found": 0,
        "rejected": 0,
        "failed": 0,
    }
    assert (stats["stored"], stats["duplicate_refs"]) == (ROWS, 0)
    for i in range(ROWS):
        customer = customers[f"ERP-{i:07d}"]
        word = "New" if i in EDITED else "Old"
        assert customer.address == f"{i} {word} Market Road, Pune"
        assert customer.customer_key_contacts[0].email == f"{word.lower()}.{i}@example.com"


@pytest.mark.slow
async def test_an_updated_rows_outcome_names_the_fields_it_changed(
    redis_url: str, redis: Any, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess().start()
    try:
        status = await sync_twice(
            redis_url,
            workers,
            tmp_path,
            fake,
            [row(i) for i in range(20)],
            [row(i, edited=i == 3) for i in range(20)],
            chunk_rows=10,
        )
    finally:
        fake.stop()

    updated = [
        item
        async for item in RunStore(redis, redis_url, status.run).outcomes()
        if item.outcome == "updated"
    ]
    assert [(item.line, item.details.get("uniqueRefNo")) for item in updated] == [
        (4, "ERP-0000003")
    ]
    assert sorted(updated[0].details["changed"]) == ["address", "customerKeyContacts"]


async def sync_twice(
    redis_url: str,
    workers: Workers,
    tmp_path: Path,
    fake: FakeEnkashProcess,
    first_rows: Sequence[dict[str, Any]],
    second_rows: Sequence[dict[str, Any]],
    *,
    chunk_rows: int = 25,
    **second: Any,
) -> RunStatus:
    """Sync ``first_rows`` on two workers, then the file rewritten as ``second_rows`` and
    submitted again with the ``second`` options of :func:`submit`; the second run's status
    once complete."""
    target = target_of(fake)
    path = write_rows(tmp_path / "rows.jsonl", first_rows)
    first = await submit(
        redis_url, str(path), target=target, chunk_rows=chunk_rows, settings=HEARTBEAT
    )
    for _ in range(2):
        workers.start(redis_url, fake.environ(), "--concurrency", "8", *FAST)
    await wait_for(redis_url, first.run, lambda status: status.complete)
    write_rows(path, second_rows)
    run = await submit(
        redis_url, str(path), target=target, chunk_rows=chunk_rows, settings=HEARTBEAT, **second
    )
    return await wait_for(redis_url, run.run, lambda status: status.complete)


def kept_of_100(kept: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """100 rows, then only the first ``kept`` of them."""
    return [row(i) for i in range(100)], [row(i) for i in range(kept)]


@pytest.mark.slow
async def test_deactivate_missing_deactivates_what_the_file_no_longer_lists_once(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess().start()
    try:
        status = await sync_twice(
            redis_url, workers, tmp_path, fake, *kept_of_100(95), deactivate_missing=0.1
        )
        stats = fake.stats()
        customers = await in_enkash(fake)
        shown = sync("status", status.run, "--redis", redis_url, env=fake.environ())
    finally:
        fake.stop()

    assert (
        "is complete: 0 created, 0 updated, 95 unchanged, 0 rejected, 0 failed, 5 deactivated"
        in shown.stdout
    )

    assert (status.deactivation, status.meta["deactivated"]) == ("done", "5")
    assert (status.counts["unchanged"], status.counts["updated"]) == (95, 0)
    assert stats["requests"].get("deactivate", 0) == 5
    inactive = sorted(ref for ref, customer in customers.items() if customer.active is False)
    assert inactive == [f"ERP-{i:07d}" for i in range(95, 100)]


@pytest.mark.slow
async def test_deactivate_missing_above_the_share_is_refused_and_nothing_is_deactivated(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess().start()
    try:
        status = await sync_twice(
            redis_url, workers, tmp_path, fake, *kept_of_100(50), deactivate_missing=0.1
        )
        stats = fake.stats()
        customers = await in_enkash(fake)
        shown = sync("status", status.run, "--redis", redis_url, env=fake.environ())
    finally:
        fake.stop()

    assert "deactivation refused (nothing was deactivated)" in shown.stdout
    assert "--max-deactivate" in shown.stderr

    assert status.deactivation == "refused"
    assert "refusing to deactivate 50 of the 100" in status.meta["deactivation_error"]
    assert stats["requests"].get("deactivate", 0) == 0
    assert all(customer.active is not False for customer in customers.values())


@pytest.mark.slow
async def test_a_deactivate_missing_step_whose_job_the_queue_lost_is_run_again(
    redis_url: str, redis: Any, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess().start()
    try:
        done = await sync_twice(
            redis_url, workers, tmp_path, fake, *kept_of_100(95), deactivate_missing=0.1
        )
        # As if the step's job was lost before it ran: every chunk done, the step not.
        store = RunStore(redis, redis_url, done.run)
        await redis.hdel(store.key("meta"), "deactivation", "deactivated", "deactivate_failed")
        await redis.delete(store.key("deactivating"))
        again = await wait_for(redis_url, done.run, lambda status: status.complete)
        stats = fake.stats()
    finally:
        fake.stop()

    # Run again by the workers' lost-chunk reviver; deactivated already, nothing is resent.
    assert (again.deactivation, again.meta["deactivated"]) == ("done", "0")
    assert stats["requests"].get("deactivate", 0) == 5
