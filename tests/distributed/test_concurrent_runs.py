"""Two runs of one file sharing a RedisCheckpoint, submitted at once: each customer is
created once, whichever run's worker holds its intent (issue 19)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from _dist import Workers, target_of, wire_row, write_rows

from enkash_async.sync.redis._saq import WorkerSettings, run_status, submit
from enkash_async.testing import FakeEnkashProcess

ROWS = 1200
RUN_TIMEOUT = 240.0


@pytest.mark.slow
async def test_the_same_file_submitted_twice_at_once_creates_each_customer_once(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess("--latency-create", "0.02").start()
    try:
        rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(ROWS)])
        target = target_of(fake)
        # No worker dies here: a heartbeat long enough that a starved event loop on a loaded
        # machine is not swept as dead (each sweep retries its chunk with backoff).
        settings = WorkerSettings(heartbeat=20)
        first, second = await asyncio.gather(
            *(
                submit(redis_url, str(rows), target=target, chunk_rows=100, settings=settings)
                for _ in range(2)
            )
        )
        # Each worker takes a dozen chunks at once: both runs' chunks of one bucket (the
        # same refs) run at the same time, in two processes.
        for _ in range(2):
            workers.start(
                redis_url, fake.environ(), "--jobs", "12", "--concurrency", "8", "--sweep", "1"
            )
        deadline = time.monotonic() + RUN_TIMEOUT
        statuses = []
        for run in (first.run, second.run):
            while not (status := await run_status(redis_url, run)).complete:
                assert time.monotonic() < deadline, f"run {run} stuck at {status}"
                await asyncio.sleep(0.2)
            statuses.append(status)
        stats = fake.stats()
    finally:
        fake.stop()

    extra = stats["stored"] - ROWS
    print(f"2 runs of {ROWS} refs at once: {stats['stored']} stored, {extra} extra")
    assert (stats["stored"], stats["duplicate_refs"], stats["unique_refs"]) == (ROWS, 0, ROWS)
    for status in statuses:
        assert status.settled == ROWS and status.counts["failed"] == 0
        # The run that did not create a ref finds it done, as its row says: unchanged.
        assert status.counts["created"] + status.counts["unchanged"] == ROWS
    assert sum(status.counts["created"] for status in statuses) <= ROWS
