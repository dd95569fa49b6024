"""The distributed sync end to end: worker processes, a real Redis, the fake EnKash as a
process of its own; workers killed, Redis stopped, a hidden rate cap."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from _dist import Workers, target_of, wire_row, write_rows
from saq.job import Status

from enkash_async.sync.redis._runs import RunStatus, RunStore
from enkash_async.sync.redis._saq import (
    WorkerSettings,
    make_queue,
    run_status,
    submit,
)
from enkash_async.sync.redis._server import RedisServer
from enkash_async.testing import FakeEnkashProcess

# Fast failure detection for tests: a chunk not touched for 2 s is redone.
FAST = ("--sweep", "1", "--lease-ttl", "10")
HEARTBEAT = WorkerSettings(heartbeat=2)
# Bounds on a whole run (seconds): generous, the machine is shared.
RUN_TIMEOUT = 150.0


async def wait_for(
    redis_url: str, run: str, done: Callable[[RunStatus], bool], timeout: float = RUN_TIMEOUT
) -> RunStatus:
    """Poll the run's status until ``done`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status = await run_status(redis_url, run)
        if done(status):
            return status
        assert time.monotonic() < deadline, f"run {run} stuck at {status}"
        await asyncio.sleep(0.1)


async def kill_a_worker_mid_chunk(
    redis_url: str, run: str, chunks: int, workers: Workers
) -> tuple[int, int]:
    """SIGKILL a worker while it runs a chunk of ``run``: stopped (SIGSTOP) first, then
    killed only if its chunk is still not done, so the kill always lands mid-chunk. The
    chunk, and the killed worker's pid."""
    by_pid = {process.pid: process for process in workers.processes}
    queue = make_queue(redis_url)
    redis = aioredis.Redis.from_url(redis_url)
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            jobs = await queue.jobs(f"{run}:{chunk}" for chunk in range(chunks))
            for chunk, job in enumerate(jobs):
                if job is None or job.status != Status.ACTIVE or not job.worker_id:
                    continue
                victim = by_pid.get(int(job.worker_id.split(":")[1]))
                if victim is None or victim.poll() is not None:
                    continue
                victim.send_signal(signal.SIGSTOP)
                if chunk not in await RunStore(redis, redis_url, run).chunks_done():
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    return chunk, victim.pid
                victim.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.02)
    finally:
        await queue.disconnect()
        await redis.aclose()
    raise AssertionError(f"no worker was seen running a chunk of run {run}")


@pytest.mark.slow
async def test_a_killed_workers_chunk_is_redone_and_every_customer_exists_once(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess("--fault-rate", "0.1", "--latency-create", "0.005").start()
    try:
        rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(2000)])
        submitted = await submit(
            redis_url, str(rows), target=target_of(fake), chunk_rows=250, settings=HEARTBEAT
        )
        for _ in range(3):
            workers.start(redis_url, fake.environ(), "--concurrency", "16", *FAST)
        await wait_for(redis_url, submitted.run, lambda status: status.settled >= 100)
        killed, victim = await kill_a_worker_mid_chunk(
            redis_url, submitted.run, submitted.chunks, workers
        )
        status = await wait_for(redis_url, submitted.run, lambda status: status.complete)
        stats = fake.stats()
    finally:
        fake.stop()

    assert (stats["stored"], stats["unique_refs"], stats["duplicate_refs"]) == (2000, 2000, 0)
    assert stats["faults_injected"].get("after_commit", 0) > 0
    assert status.counts["failed"] == status.counts["rejected"] == 0
    assert status.settled == 2000
    redis = aioredis.Redis.from_url(redis_url)
    store = RunStore(redis, redis_url, submitted.run)
    lines = [item.line async for item in store.outcomes()]
    done = await store.chunks_done()
    await redis.aclose()
    assert sorted(lines) == list(range(1, 2001))
    queue = make_queue(redis_url)
    try:
        (redone,) = await queue.jobs([f"{submitted.run}:{killed}"])
    finally:
        await queue.disconnect()
    # The chunk the kill cut short was finished by another worker.
    assert killed in done
    assert redone is not None and redone.worker_id.split(":")[1] != str(victim)


@pytest.mark.slow
async def test_workers_sharing_a_budget_keep_under_a_hidden_rate_cap(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    cap = 200
    fake = FakeEnkashProcess("--rate-limit", str(cap)).start()
    try:
        rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(800)])
        submitted = await submit(
            redis_url, str(rows), target=target_of(fake), chunk_rows=100, settings=HEARTBEAT
        )
        for _ in range(4):
            workers.start(
                redis_url,
                fake.environ(),
                "--concurrency",
                "8",
                "--rate-limit",
                str(cap * 0.95),
                *FAST,
            )
        await wait_for(redis_url, submitted.run, lambda status: status.complete)
        stats = fake.stats()
    finally:
        fake.stop()

    # What the shared budget guarantees whatever the machine's speed: the workers together
    # stay under the cap (how close they come to it is benchmarks/sync_scale.py's figure).
    accepted = (stats["created"] - 1) / (stats["last_created_at"] - stats["first_created_at"])
    assert accepted <= 1.1 * cap
    assert stats["rate_limited"] <= 800 * 5 / 1000
    assert (stats["stored"], stats["duplicate_refs"]) == (800, 0)


@pytest.mark.slow
async def test_workers_sharing_max_concurrency_never_exceed_it_at_the_server(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess("--max-in-flight", "8", "--latency-create", "0.05").start()
    try:
        rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(300)])
        submitted = await submit(
            redis_url, str(rows), target=target_of(fake), chunk_rows=50, settings=HEARTBEAT
        )
        for _ in range(4):
            workers.start(
                redis_url, fake.environ(), "--concurrency", "8", "--max-concurrency", "8", *FAST
            )
        await wait_for(redis_url, submitted.run, lambda status: status.complete)
        stats = fake.stats()
    finally:
        fake.stop()

    assert stats["peak_in_flight"] <= 8
    assert stats["rate_limited"] == 0
    assert (stats["stored"], stats["duplicate_refs"]) == (300, 0)


@pytest.mark.slow
async def test_redis_stopped_mid_run_stops_every_request_and_the_run_resumes_after(
    redis_server: RedisServer, redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess("--latency-create", "0.01").start()
    try:
        rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(600)])
        submitted = await submit(
            redis_url, str(rows), target=target_of(fake), chunk_rows=100, settings=HEARTBEAT
        )
        for _ in range(2):
            workers.start(redis_url, fake.environ(), "--concurrency", "8", *FAST)
        await wait_for(redis_url, submitted.run, lambda status: status.settled >= 150)

        redis_server.stop()
        await asyncio.sleep(1.5)  # requests already admitted finish
        sent_then = fake.stats()["requests"].get("create", 0)
        await asyncio.sleep(2.0)
        sent_later = fake.stats()["requests"].get("create", 0)
        redis_server.start()

        status = await wait_for(redis_url, submitted.run, lambda status: status.complete)
        stats = fake.stats()
    finally:
        fake.stop()

    assert sent_later == sent_then  # nothing sent while the budget was unreachable
    assert "BudgetUnavailableError" in workers.logs() or "SyncStoreError" in workers.logs()
    assert (stats["stored"], stats["unique_refs"], stats["duplicate_refs"]) == (600, 600, 0)
    assert status.settled == 600 and status.counts["failed"] == 0
    redis = aioredis.Redis.from_url(redis_url)
    budget = [key async for key in redis.scan_iter(match="enkash:budget:*") if b"leases" not in key]
    admitted = int(await redis.hget(budget[0], "seq") or 0)
    await redis.aclose()
    sent = stats["requests"].get("create", 0) + stats["requests"].get("search", 0)
    assert sent <= admitted  # every request EnKash saw was admitted by the shared budget
