"""``-v`` and ``-vv`` log the client's calls to stderr, as ``ENKASH_LOG=info|debug`` does
(issue 20). Each runs in a process of its own: logging configuration is process-wide."""

from __future__ import annotations

import os
import subprocess
import sys

SEARCH = ["customers", "search", "--fake", "--fake-customers", "3", "--format", "jsonl"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENKASH_")}
    return subprocess.run(
        [sys.executable, "-m", "enkash_async", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_vv_logs_one_debug_line_per_http_request_and_no_secret() -> None:
    done = _cli("-vv", *SEARCH)

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if " DEBUG enkash_async: " in line]
    assert any("customers.search.page POST /api/v0/customer/search -> 200" in x for x in lines)
    assert any("login POST /oauth/token -> 200" in line for line in lines)
    assert "Bearer" not in done.stderr and "password" not in done.stderr.lower()


def test_v_logs_info_lines_but_no_request_lines() -> None:
    done = _cli("-v", *SEARCH)

    assert done.returncode == 0, done.stderr
    assert " INFO enkash_async: logged in to EnKash" in done.stderr
    assert " DEBUG " not in done.stderr


def test_without_v_the_client_logs_nothing() -> None:
    done = _cli(*SEARCH)

    assert done.returncode == 0, done.stderr
    assert "enkash_async:" not in done.stderr
    assert len(done.stdout.splitlines()) == 3
