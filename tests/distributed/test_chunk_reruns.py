"""A chunk whose job runs more than once (SAQ's sweep can run a job again, e.g. when a
worker starts) is counted once: the run has each chunk done once and each row's outcome
once, and the worker's metrics count the chunk ``done`` once, the extra job ``repeated``.
A worker runs in this process, so its Prometheus hooks are read directly."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _dist import wire_row, write_rows
from saq.job import Status
from test_distributed_sync import HEARTBEAT, RUN_TIMEOUT, wait_for

from enkash_async import EnkashClient
from enkash_async.sync import SyncTarget
from enkash_async.sync.redis._metrics import PrometheusHooks
from enkash_async.sync.redis._saq import (
    JOB_FUNCTION,
    WorkerSettings,
    make_queue,
    run_status,
    run_worker,
    submit,
)
from enkash_async.testing import FakeEnkash

ROWS = 30

# SAQ (in this process here) calls redis-py's deprecated setex: its warning, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")


@contextlib.asynccontextmanager
async def worker(
    redis_url: str, server: FakeEnkash, target: SyncTarget, *, jobs: int = 1
) -> AsyncIterator[PrometheusHooks]:
    """A worker running in this process inside the block; its metrics hooks."""
    hooks = PrometheusHooks()
    stop = asyncio.Event()
    settings = WorkerSettings(concurrency=4, jobs=jobs, sweep=1, sweep_wait=0.5)
    async with EnkashClient(server.url, token=server.token, hooks=hooks) as client:
        running = asyncio.create_task(run_worker(redis_url, client, target, settings, stop=stop))
        try:
            yield hooks
        finally:
            stop.set()
            await running


async def enqueue_chunk(redis_url: str, run: str, chunk: int, key: str) -> None:
    """Queue a job of ``chunk`` under ``key``, as SAQ queues one it runs again (unless SAQ
    holds that job unfinished: then its sweep is running it again already)."""
    queue = make_queue(redis_url)
    try:
        job = await queue.enqueue(
            JOB_FUNCTION, key=key, timeout=0, heartbeat=2, retries=3, run=run, chunk=chunk
        )
        held = await queue.job(key)
        assert job is not None or (held is not None and held.status != Status.COMPLETE)
    finally:
        await queue.disconnect()


async def until_complete(redis_url: str, key: str) -> None:
    """Wait until the job ``key`` has completed."""
    queue = make_queue(redis_url)
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while (job := await queue.job(key)) is None or job.status != Status.COMPLETE:
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.05)
    finally:
        await queue.disconnect()


def chunks(hooks: PrometheusHooks, outcome: str) -> float:
    return hooks.chunks.labels(outcome)._value.get()


def rows(hooks: PrometheusHooks) -> dict[str, float]:
    return {
        outcome: value
        for outcome in ("created", "found", "updated", "unchanged", "rejected", "failed")
        if (value := hooks.rows.labels(outcome)._value.get())
    }


async def test_a_chunk_job_run_again_after_it_finished_counts_the_chunk_once(
    redis_url: str, tmp_path: Path
) -> None:
    async with FakeEnkash() as server:
        target = SyncTarget.for_token(server.url, server.token)
        path = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(ROWS)])
        run = (
            await submit(redis_url, str(path), target=target, chunk_rows=10, settings=HEARTBEAT)
        ).run
        async with worker(redis_url, server, target) as hooks:
            await wait_for(redis_url, run, lambda status: status.complete)
            await enqueue_chunk(redis_url, run, 0, key=f"{run}:0")
            await until_complete(redis_url, f"{run}:0")
        status = await run_status(redis_url, run)
        created = server.stats.created

    assert (status.chunks_done, status.chunks) == (3, 3)
    assert (status.counts["created"], status.settled, created) == (ROWS, ROWS, ROWS)
    assert chunks(hooks, "done") == 3
    assert chunks(hooks, "repeated") >= 1
    assert rows(hooks) == {"created": ROWS}  # the job run again found its chunk done


async def test_two_jobs_of_one_chunk_at_once_count_the_chunk_and_its_rows_once(
    redis_url: str, tmp_path: Path
) -> None:
    async with FakeEnkash(latency={"create": 0.01}) as server:
        target = SyncTarget.for_token(server.url, server.token)
        path = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(ROWS)])
        run = (
            await submit(redis_url, str(path), target=target, chunk_rows=ROWS, settings=HEARTBEAT)
        ).run
        await enqueue_chunk(redis_url, run, 0, key=f"{run}:0:twin")
        async with worker(redis_url, server, target, jobs=2) as hooks:
            await wait_for(redis_url, run, lambda status: status.complete)
            await until_complete(redis_url, f"{run}:0")
            await until_complete(redis_url, f"{run}:0:twin")
        status = await run_status(redis_url, run)
        created = server.stats.created

    assert (status.chunks_done, status.chunks) == (1, 1)
    assert (status.counts["created"], status.settled, created) == (ROWS, ROWS, ROWS)
    # SAQ's sweep at the worker's start may run a job once more: repeated, never done.
    assert chunks(hooks, "done") == 1
    assert chunks(hooks, "repeated") >= 1
    assert sum(rows(hooks).values()) >= 2 * ROWS  # row metrics count work done: both jobs'
