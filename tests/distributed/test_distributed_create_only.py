"""A run submitted create-only (``submit(create_only=True)``, ``sync submit --create-only``,
``sync FILE --create-only``) is synced as ``customers import --create-only`` is: a customer
EnKash has is ``found``, never compared or updated, whichever worker runs the chunk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from _dist import Workers, wire_row, write_rows
from test_distributed_upsert import in_enkash, row, sync_twice
from test_sync_cli import sync

from enkash_async.sync.redis._runs import RunStore
from enkash_async.testing import FakeEnkashProcess

ROWS = 100
EDITED = range(0, ROWS, ROWS // 10)  # 10 rows spread over every chunk


@pytest.mark.slow
async def test_a_create_only_run_of_an_edited_file_finds_every_row_and_patches_none(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess().start()
    try:
        # The same workers run both runs: create-only is the run's, not the worker's.
        status = await sync_twice(
            redis_url,
            workers,
            tmp_path,
            fake,
            [row(i) for i in range(ROWS)],
            [row(i, edited=i in EDITED) for i in range(ROWS)],
            create_only=True,
        )
        stats = fake.stats()
        customers = await in_enkash(fake)
    finally:
        fake.stop()

    assert status.meta["create_only"] == "1"
    assert dict(status.counts) == {
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "found": ROWS,
        "rejected": 0,
        "failed": 0,
    }
    assert stats["changed"] == {} and stats["patched_fields"] == {}
    assert (stats["stored"], stats["duplicate_refs"]) == (ROWS, 0)
    assert all(
        customers[f"ERP-{i:07d}"].address == f"{i} Old Market Road, Pune" for i in range(ROWS)
    )


async def test_sync_submit_create_only_records_it_in_the_runs_meta(
    redis_url: str, redis: Any, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(20)])
    environ = {**os.environ, "ENKASH_BASE_URL": "http://127.0.0.1:9", "ENKASH_TOKEN": "t"}

    plain = sync("submit", str(rows), "--redis", redis_url, env=environ)
    create_only = sync("submit", str(rows), "--create-only", "--redis", redis_url, env=environ)

    assert (plain.returncode, create_only.returncode) == (0, 0), plain.stderr + create_only.stderr
    flags = []
    for done in (plain, create_only):
        meta = await RunStore(redis, redis_url, done.stdout.strip().splitlines()[-1]).meta()
        flags.append(meta.get("create_only"))
    assert flags == ["0", "1"]


@pytest.mark.slow
def test_sync_file_create_only_counts_rows_as_a_create_only_import(
    redis_url: str, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(40)])

    options = ("--fake", "--workers", "1", "--chunk-rows", "20", "--redis", redis_url)

    done = sync(str(rows), "--create-only", *options)

    assert done.returncode == 0, done.stderr
    # As `customers import --create-only` says it: no updated or unchanged, found always.
    assert "is complete: 40 created, 0 found, 0 rejected, 0 failed" in done.stdout
