"""A job of a chunk that another job of the same chunk finishes while it starts (SAQ can
run one chunk's job twice) finds the chunk done: it is no "Redis lost rows" failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from _dist import wire_row, write_rows
from test_distributed_sync import HEARTBEAT

from enkash_async import EnkashClient
from enkash_async.sync import SyncTarget
from enkash_async.sync.redis import _saq
from enkash_async.sync.redis._runs import RunStore
from enkash_async.sync.redis._saq import WorkerSettings, submit
from enkash_async.testing import FakeEnkash


async def test_a_chunk_finished_by_another_job_while_this_one_starts_is_done_not_lost(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeEnkash() as server:
        target = SyncTarget.for_token(server.url, server.token)
        path = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(5)])
        run = (await submit(redis_url, str(path), target=target, settings=HEARTBEAT)).run
        checked = RunStore.chunks_done

        async def finished_right_after_the_check(store: RunStore) -> set[int]:
            # The other job finishes chunk 0 between this job's check and its read.
            done = await checked(store)
            if 0 not in done:
                await store.finish_chunk(0)
            return done

        async with EnkashClient(server.url, token=server.token) as client:
            job = _saq._WorkerJob(redis_url, client, target, WorkerSettings())
            try:
                with monkeypatch.context() as patch:
                    patch.setattr(RunStore, "chunks_done", finished_right_after_the_check)
                    result = await job.sync_chunk(run, 0)
            finally:
                await job.redis.aclose()

    assert result == {"rows": 0, "repeated": 1}
    assert server.stats.created == 0  # this job sent nothing: the other job's rows
