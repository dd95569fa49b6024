"""Helpers of the distributed sync tests: rows, and workers as processes (the fake EnKash
as a process is :class:`enkash_async.testing.FakeEnkashProcess`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enkash_async.sync import SyncTarget
from enkash_async.testing import FakeEnkashProcess

# Every process a test starts is stopped by then (seconds).
PROCESS_TIMEOUT = 15.0


def wire_row(i: int, *, ref: str | None = None) -> dict[str, Any]:
    """A valid ``CustomerCreate`` in wire JSON, with ``uniqueRefNo`` ``ERP-<i>``."""
    name = f"Row {i} Traders Pvt Ltd"
    return {
        "legalName": name,
        "uniqueRefNo": ref or f"ERP-{i:07d}",
        "customerKeyContacts": [
            {"name": "Asha Rao", "legalName": name, "mobile": "9876543210", "deleted": False}
        ],
    }


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write ``rows`` as a JSONL file at ``path``."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def target_of(fake: FakeEnkashProcess) -> SyncTarget:
    """The checkpoint target of ``fake.environ()``'s workers: its URL and ready token (no
    logins, which no budget covers, so the server's in-flight count is the budget's alone)."""
    return SyncTarget.for_token(fake.url, fake.token)


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM ``process``, and SIGKILL it if it has not exited in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(PROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Workers:
    """``enkash-async sync worker`` processes, each logging to a file in ``folder``;
    stopped at the end of the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, redis_url: str, environ: dict[str, str], *options: str
    ) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.processes)}.log"
        with log.open("wb") as stream:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "enkash_async",
                    "sync",
                    "worker",
                    "--redis",
                    redis_url,
                    *options,
                ],
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def logs(self) -> str:
        """Everything the workers wrote so far."""
        return "".join(
            path.read_text(errors="replace") for path in sorted(self.folder.glob("worker-*.log"))
        )

    def stop(self) -> None:
        """SIGTERM every worker at once, then wait for each (SIGKILL after a while)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            stop_process(process)
