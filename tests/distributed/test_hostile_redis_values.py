"""A Redis whose sync keys hold what enkash_async never wrote there (another program, a
hand edit, a corrupted restore): `sync status` and `sync report` say so in one line, as a
typed error, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis as sync_redis
from _dist import wire_row, write_rows
from test_distributed_sync import HEARTBEAT
from test_sync_cli import sync

from enkash_async.sync._checkpoint import SyncTarget
from enkash_async.sync.redis._budget import budget_keys
from enkash_async.sync.redis._saq import submit

TARGET = SyncTarget.for_token("http://127.0.0.1:9", "no-worker-runs-it")


async def submitted(redis_url: str, tmp_path: Path) -> str:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(3)])
    return (await submit(redis_url, str(rows), target=TARGET, settings=HEARTBEAT)).run


@pytest.mark.parametrize(
    ("key", "field", "value"),
    [
        ("counts", "created", "many"),
        ("meta", "rows", "\xff\xfe"),
        ("figures", "requests", "1e400x"),
    ],
)
async def test_sync_status_on_a_run_key_holding_garbage_is_one_line(
    redis_url: str, tmp_path: Path, key: str, field: str, value: str
) -> None:
    run = await submitted(redis_url, tmp_path)
    with sync_redis.Redis.from_url(redis_url) as redis:
        redis.hset(f"enkash:run:{run}:{key}", field, value.encode("latin-1"))

    shown = sync("status", run, "--redis", redis_url)

    assert shown.returncode == 1, shown.stderr
    assert "Traceback" not in shown.stderr
    (line,) = shown.stderr.strip().splitlines()
    assert f"enkash:run:{run}:{key}" in line and "not written by enkash_async" in line


async def test_sync_status_with_a_budget_holding_garbage_is_one_line(
    redis_url: str, tmp_path: Path
) -> None:
    run = await submitted(redis_url, tmp_path)
    state, _ = budget_keys(TARGET)
    with sync_redis.Redis.from_url(redis_url) as redis:
        redis.hset(state, "rate", "fast")

    shown = sync("status", run, "--redis", redis_url)

    assert shown.returncode == 1, shown.stderr
    assert "Traceback" not in shown.stderr
    (line,) = shown.stderr.strip().splitlines()
    assert state in line and "not written by enkash_async" in line


async def test_sync_report_on_an_outcome_holding_garbage_is_one_line(
    redis_url: str, tmp_path: Path
) -> None:
    run = await submitted(redis_url, tmp_path)
    with sync_redis.Redis.from_url(redis_url) as redis:
        redis.hset(f"enkash:run:{run}:out:0", "7", 'failed\t{"ref": ')

    shown = sync("report", run, "--redis", redis_url)

    assert shown.returncode == 1, shown.stderr
    assert "Traceback" not in shown.stderr
    assert "not written by enkash_async" in shown.stderr.strip().splitlines()[-1]
