"""A distributed run whose ``--deactivate-missing`` step was refused is not a success:
``sync status`` and ``sync FILE`` exit 1 naming the share that would let it through, as
``customers import --deactivate-missing`` does."""

from __future__ import annotations

from pathlib import Path

import pytest
from _dist import Workers, target_of, wire_row, write_rows
from test_distributed_sync import FAST, HEARTBEAT, wait_for
from test_sync_cli import sync

from enkash_async.sync.redis._saq import submit
from enkash_async.testing import FakeEnkashProcess

# The checkpoint knows 10 customers; a file of 5 of them misses 50% (> the 10% allowed).
KNOWN, KEPT = 10, 5


async def test_status_wait_of_a_run_whose_deactivation_was_refused_exits_1_naming_the_share(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    with FakeEnkashProcess() as fake:
        environ = fake.environ()
        path = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(KNOWN)])
        first = await submit(redis_url, str(path), target=target_of(fake), settings=HEARTBEAT)
        workers.start(redis_url, environ, *FAST)
        await wait_for(redis_url, first.run, lambda status: status.complete)
        write_rows(path, [wire_row(i) for i in range(KEPT)])
        second = await submit(
            redis_url,
            str(path),
            target=target_of(fake),
            settings=HEARTBEAT,
            deactivate_missing=0.1,
        )

        shown = sync("status", second.run, "--wait", "--redis", redis_url, env=environ)
        deactivated = fake.stats()["requests"].get("deactivate", 0)

    assert shown.returncode == 1, shown.stderr
    assert "deactivation refused (nothing was deactivated)" in shown.stdout
    assert "refusing to deactivate 5 of the 10" in shown.stderr
    assert "--max-deactivate 0.501" in shown.stderr
    assert deactivated == 0


@pytest.mark.slow
def test_sync_file_whose_deactivation_was_refused_exits_1_naming_the_share(
    redis_url: str, tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(KNOWN)])
    local = ("--redis", redis_url, "--workers", "1", "--chunk-rows", "10")
    with FakeEnkashProcess() as fake:
        environ = fake.environ()
        first = sync(str(path), *local, env=environ)
        assert first.returncode == 0, first.stderr
        write_rows(path, [wire_row(i) for i in range(KEPT)])

        second = sync(str(path), *local, "--deactivate-missing", env=environ)
        deactivated = fake.stats()["requests"].get("deactivate", 0)

    assert second.returncode == 1, second.stderr
    assert "deactivation refused (nothing was deactivated)" in second.stdout
    assert "refusing to deactivate 5 of the 10" in second.stderr
    assert "--max-deactivate 0.501" in second.stderr
    assert deactivated == 0
