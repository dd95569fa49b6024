"""``enkash-async sync``: submit, status, report, and the all-local ``sync FILE --fake``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _dist import Workers, wire_row, write_rows

from enkash_async.cli import _sync
from enkash_async.testing import FakeEnkashProcess

SYNC = [sys.executable, "-m", "enkash_async", "sync"]


def sync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SYNC, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def rows_with_one_reject(path: Path, count: int) -> Path:
    rows = [wire_row(i) for i in range(count)]
    del rows[3]["uniqueRefNo"]  # valid, but a sync needs it: rejected unsent
    return write_rows(path, rows)


@pytest.mark.slow
def test_sync_fake_runs_a_file_on_local_workers_and_prints_the_summary(tmp_path: Path) -> None:
    rows = rows_with_one_reject(tmp_path / "rows.jsonl", 60)
    environ = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}

    done = sync(str(rows), "--workers", "2", "--fake", "--chunk-rows", "20", env=environ)

    assert done.returncode == 1, done.stderr  # as import: a rejected row is exit 1
    assert "is complete: 59 created, 0 updated, 0 unchanged, 1 rejected, 0 failed" in done.stdout
    assert "2 workers" in done.stderr
    (reject,) = [
        json.loads(line) for line in Path(f"{rows}.rejects.jsonl").read_text().splitlines()
    ]
    assert (reject["line"], reject["outcome"], reject["uniqueRefNo"]) == (4, "rejected", None)
    assert any("uniqueRefNo" in reason for reason in reject["reasons"])


@pytest.mark.slow
def test_a_clean_local_run_exits_0_without_shutdown_warnings(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(40)])
    environ = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}

    done = sync(str(rows), "--workers", "2", "--fake", "--chunk-rows", "20", env=environ)

    assert done.returncode == 0, done.stderr
    assert "is complete: " in done.stdout and "0 rejected, 0 failed" in done.stdout
    assert "grace period" not in done.stderr and "Traceback" not in done.stderr
    assert not Path(f"{rows}.rejects.jsonl").exists()


def test_a_bad_fault_rate_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(1)])

    done = sync(str(rows), "--fake", "--fault-rate", "2")

    assert done.returncode == 2
    assert "--fault-rate: must be from 0 to 1, got 2" in done.stderr
    assert "Traceback" not in done.stderr


def test_sync_without_the_sync_extra_says_which_extra_to_install() -> None:
    blocked = (
        "import sys; sys.modules['saq'] = None; from enkash_async.cli import main; "
        "sys.exit(main(['sync', 'status', 'RUN', '--redis', 'redis://127.0.0.1:1']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: `enkash-async sync` needs the sync extra (saq is not installed): "
        "pip install 'enkash-async[sync]'"
    ]


@pytest.mark.slow
def test_submit_prints_the_run_id_last_and_status_and_report_follow_it(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    fake = FakeEnkashProcess().start()
    try:
        environ = fake.environ()
        rows = rows_with_one_reject(tmp_path / "rows.jsonl", 30)
        submitted = sync("submit", str(rows), "--redis", redis_url, env=environ)
        assert submitted.returncode == 0, submitted.stderr
        run = submitted.stdout.strip().splitlines()[-1]
        workers.start(redis_url, environ)

        status = sync("status", run, "--wait", "--redis", redis_url, env=environ)
        report = sync("report", run, "--redis", redis_url, env=environ)
    finally:
        fake.stop()

    assert status.returncode == 0, status.stderr
    counts = status.stdout.split(f"run {run} is complete: ")[1].strip().split(", ")
    assert counts == ["29 created", "0 updated", "0 unchanged", "1 rejected", "0 failed"]
    assert report.returncode == 0, report.stderr
    (reject,) = [json.loads(line) for line in report.stdout.splitlines()]
    assert (reject["outcome"], reject["line"]) == ("rejected", 4)
    assert "uniqueRefNo" in reject and "ref" not in reject  # named as import names it
    assert any("uniqueRefNo" in reason for reason in reject["reasons"])


def test_status_of_an_unknown_run_says_so(redis_url: str) -> None:
    done = sync("status", "no-such-run", "--redis", redis_url)

    assert done.returncode == 1
    assert "Redis has no run 'no-such-run'" in done.stderr


def test_a_command_without_redis_says_how_to_give_one() -> None:
    environ = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}

    done = sync("status", "some-run", env=environ)

    assert done.returncode == 2
    assert "give --redis URL or set REDIS_URL" in done.stderr


def test_register_adds_the_sync_command_with_its_handler() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    _sync.register(parser.add_subparsers(dest="command"))

    args = parser.parse_args(["sync", "status", "RUN", "--wait"])
    short = parser.parse_args(["sync", "rows.csv", "--workers", "2"])

    assert args.handler is _sync.run
    assert (args.form, args.run, args.wait) == ("status", "RUN", True)
    assert (short.form, short.file, short.workers) == ("run", "rows.csv", 2)
