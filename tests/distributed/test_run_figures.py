"""``sync status`` shows what a run's workers sent: requests, 429 replies and retries
summed over every chunk, and the target's shared request budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from _dist import Workers, target_of, wire_row, write_rows
from test_distributed_sync import FAST, HEARTBEAT, wait_for
from test_sync_cli import sync

from enkash_async.sync._checkpoint import SyncTarget
from enkash_async.sync.redis._connection import connect
from enkash_async.sync.redis._runs import RunStore
from enkash_async.sync.redis._saq import submit
from enkash_async.testing import FakeEnkashProcess


@pytest.mark.slow
async def test_a_runs_status_counts_every_request_and_429_its_chunks_met(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    # The fake refuses beyond 40 requests/s and the worker starts at 400/s: 429s, retried.
    fake = FakeEnkashProcess("--rate-limit", "40").start()
    try:
        rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(120)])
        run = await submit(
            redis_url, str(rows), target=target_of(fake), chunk_rows=40, settings=HEARTBEAT
        )
        workers.start(redis_url, fake.environ(), "--concurrency", "8", "--rate-limit", "400", *FAST)
        status = await wait_for(redis_url, run.run, lambda status: status.complete)
        workers.stop()  # every chunk job has ended and added its figures
        status = await wait_for(redis_url, run.run, lambda status: status.complete)
        stats = fake.stats()
    finally:
        fake.stop()

    assert stats["stored"] == 120
    # The workers use a token (no login): every request EnKash saw came from a chunk.
    sent = {route: count for route, count in stats["requests"].items() if route != "fake_stats"}
    assert status.figures["requests"] == sum(sent.values())
    assert status.figures["rate_limited"] == stats["rate_limited"] > 0
    assert status.figures["retries"] > 0
    assert status.budget["in_flight"] == 0
    assert 0 < status.budget["rate"] < 400


async def test_sync_status_prints_the_runs_requests_429s_retries_and_budget(
    redis_url: str, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(3)])
    target = SyncTarget.for_token("http://127.0.0.1:9", "no-worker-runs-it")
    run = await submit(redis_url, str(rows), target=target, settings=HEARTBEAT)
    redis = connect(redis_url)
    try:
        await RunStore(redis, redis_url, run.run).add_figures(
            {"requests": 1234, "rate_limited": 56, "retries": 78, "no_reply": 0}
        )
    finally:
        await redis.aclose()

    shown = sync("status", run.run, "--redis", redis_url)

    assert shown.returncode == 0, shown.stderr
    lines = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if "│" in line}
    assert "1,234" in lines["requests sent"]
    assert "56" in lines["429 replies"]
    assert "78" in lines["retries"]
    assert "requests with no reply" not in lines
