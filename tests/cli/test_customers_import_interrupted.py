"""Ctrl-C during ``customers import`` says what was done and that a rerun resumes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _cli import wire_row, write_jsonl

from enkash_async.testing import FakeEnkashProcess


@pytest.mark.slow
def test_ctrl_c_says_what_was_done_and_that_a_rerun_resumes(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 2001)])
    with FakeEnkashProcess("--customers", "0", "--latency-create", "0.05") as fake:
        command = [sys.executable, "-m", "enkash_async", "customers", "import", str(source)]
        process = subprocess.Popen(
            [*command, "--concurrency", "4", "--no-scan"],
            env=fake.environ(),
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while fake.stats().get("created", 0) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)

    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted after" in err
    assert "created" in err
    assert "Run the same command again to resume" in err
