"""Chaos: three ``customers import`` and two ``sync submit`` of one file at once, with Redis
flushed and then restarted in the middle, against fake EnKash servers that fail one call in
fifty (ambiguous after-commit faults included). Afterwards each EnKash holds every row
exactly once, and no run whose state Redis lost was ever reported complete (issue 19).

A checkpoint is the unit of exactly-once: the imports share one SQLite checkpoint, the
submits one Redis. EnKash does not refuse a repeated ``uniqueRefNo``, so syncs that share an
EnKash must share a checkpoint (docs/sync.md, "Concurrent runs"); here the imports write to
one fake EnKash and the distributed runs to another, all at the same time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis as sync_redis
from _dist import Workers, wire_row, write_rows

from enkash_async.sync.redis._server import RedisServer
from enkash_async.testing import FakeEnkashProcess

pytestmark = pytest.mark.slow

ROWS = 1500
CLI = [sys.executable, "-m", "enkash_async"]
FAKE = ("--customers", "0", "--latency-create", "0.01", "--fault-rate", "0.02")
DEADLINE = 240.0


def _cli(
    *args: str, env: dict[str, str], timeout: float = DEADLINE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _run_id(submitted: subprocess.CompletedProcess[str]) -> str:
    assert submitted.returncode == 0, submitted.stderr
    return submitted.stdout.strip().splitlines()[-1]


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _settled(fake: FakeEnkashProcess, quiet: float = 2.0) -> None:
    """Wait until ``fake`` stores nothing new for ``quiet`` seconds (in-flight chunks done)."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < quiet:
        stored = fake.stats()["stored"]
        if stored != last:
            last, since = stored, time.monotonic()
        time.sleep(0.2)


def test_imports_and_submits_at_once_through_a_flush_and_a_restart_store_each_row_once(
    redis_server: RedisServer, redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(ROWS)])
    checkpoint = tmp_path / "imports.sqlite"
    seeded = ("--fault-seed", "19")
    with (
        FakeEnkashProcess(*FAKE, *seeded) as imports_fake,
        FakeEnkashProcess(*FAKE, *seeded) as runs_fake,
        ThreadPoolExecutor(max_workers=6) as pool,
    ):
        import_env = {**os.environ, **imports_fake.environ()}
        run_env = {**os.environ, **runs_fake.environ()}
        imports = [
            pool.submit(
                _cli,
                *("customers", "import", str(rows), "--checkpoint", str(checkpoint)),
                *("--concurrency", "8", "--no-scan", "--rejects", str(tmp_path / f"r{i}.jsonl")),
                env=import_env,
            )
            for i in range(3)
        ]
        submit = ("sync", "submit", str(rows), "--redis", redis_url, "--chunk-rows", "100")
        submits = [pool.submit(_cli, *submit, env=run_env) for _ in range(2)]
        for _ in range(2):
            workers.start(redis_url, run_env, "--concurrency", "8", "--sweep", "1")
        lost_runs = [_run_id(done.result()) for done in submits]
        watchers = [
            pool.submit(_cli, "sync", "status", run, "--wait", "--redis", redis_url, env=run_env)
            for run in lost_runs
        ]

        _wait_for(lambda: runs_fake.stats()["stored"] >= ROWS // 4, "a quarter of the rows")
        with sync_redis.Redis.from_url(redis_url) as client:
            client.flushall()
        redis_server.stop()
        redis_server.start()
        watched = [done.result() for done in watchers]
        # The operator's move on "state lost": resubmit once the workers' chunks in flight
        # have ended, and every row not known done is looked up before it is created.
        _settled(runs_fake)
        resumed = _run_id(_cli(*submit, "--lost-state", env=run_env))
        final = _cli("sync", "status", resumed, "--wait", "--redis", redis_url, env=run_env)
        imported = [done.result() for done in imports]
        imports_stats, runs_stats = imports_fake.stats(), runs_fake.stats()

    faults = [sum(stats["faults_injected"].values()) for stats in (imports_stats, runs_stats)]
    print(
        f"imports: {imports_stats['stored']} stored of {ROWS}; runs: {runs_stats['stored']}"
        f" stored of {ROWS}; faults injected: {faults[0]} / {faults[1]}"
    )
    assert all(faults), "the fakes injected no fault: the chaos did not happen"
    for status in watched:
        assert status.returncode == 1 and "is complete" not in status.stdout, status.stdout
        assert "--lost-state" in status.stderr
    assert final.returncode == 0 and "is complete" in final.stdout, final.stderr
    for done in imported:
        assert done.returncode == 0, done.stderr[-2000:]
    for stats in (imports_stats, runs_stats):
        assert (stats["stored"], stats["unique_refs"], stats["duplicate_refs"]) == (ROWS, ROWS, 0)
