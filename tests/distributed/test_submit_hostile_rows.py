"""``sync submit`` reads the file as ``customers import`` does: a hostile line (too deep, a
number too long) is that row's rejection with its line and ref, the rest are stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _dist import wire_row

from enkash_async.testing import FakeEnkashProcess

SYNC = [sys.executable, "-m", "enkash_async", "sync"]


def sync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SYNC, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.slow
def test_submit_rejects_hostile_lines_with_their_line_and_stores_the_rest(
    redis_url: str, tmp_path: Path
) -> None:
    lines = [json.dumps(wire_row(i)) for i in range(10)]
    lines[3] = "[" * 100_000 + "]" * 100_000
    lines[6] = json.dumps(wire_row(6))[:-1] + ', "pinCode": ' + "9" * 5000 + "}"
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(lines) + "\n")
    fake = FakeEnkashProcess().start()
    try:
        environ = fake.environ()
        submitted = sync("submit", str(source), "--redis", redis_url, env=environ)
        assert submitted.returncode == 0, submitted.stderr
        assert "Traceback" not in submitted.stderr
        run = submitted.stdout.strip().splitlines()[-1]
        report = sync("report", run, "--redis", redis_url, env=environ)
    finally:
        fake.stop()

    assert report.returncode == 0, report.stderr
    rejects = sorted((json.loads(line) for line in report.stdout.splitlines()), key=str)
    by_line = {reject["line"]: reject for reject in rejects}
    assert sorted(by_line) == [4, 7]
    assert "nested too deeply" in by_line[4]["reasons"][0]
    assert "digits" in by_line[7]["reasons"][0]
    assert by_line[7]["uniqueRefNo"] == "ERP-0000006"  # named as import names it
