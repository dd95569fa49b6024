"""``sync worker --metrics-port``: Prometheus metrics scraped over real HTTP while a run
is going (a worker process, a real Redis, the fake EnKash on loopback)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from _dist import Workers, target_of, wire_row, write_rows
from prometheus_client.parser import text_string_to_metric_families

from enkash_async.sync._checkpoint import SyncTarget
from enkash_async.sync.redis._saq import WorkerSettings, run_status, submit
from enkash_async.testing import FakeEnkashProcess

# A generous bound on waits (seconds): the machine is shared.
TIMEOUT = 120.0
WORKER = [sys.executable, "-m", "enkash_async", "sync", "worker"]
_METRICS_LINE = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A scrape's samples by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(
    scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in scraped.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


async def metrics_port(workers: Workers) -> int:
    """The port the worker logged it serves metrics on (it was given port 0)."""
    deadline = time.monotonic() + TIMEOUT
    while (match := _METRICS_LINE.search(workers.logs())) is None:
        assert time.monotonic() < deadline, workers.logs()
        assert workers.processes[0].poll() is None, workers.logs()
        await asyncio.sleep(0.05)
    return int(match.group(1))


async def scrape(http: aiohttp.ClientSession, port: int) -> str:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as reply:
        assert reply.status == 200
        assert reply.content_type == "text/plain"
        return await reply.text()


@pytest.mark.slow
async def test_a_worker_serves_rows_chunks_requests_429s_and_the_budget_while_it_runs(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    # The fake refuses beyond 40 requests/s; the workers' budget starts at 400/s: 429s,
    # and the shared budget lowers its rate.
    fake = FakeEnkashProcess("--rate-limit", "40", "--latency-create", "0.01").start()
    try:
        rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(300)])
        submitted = await submit(
            redis_url,
            str(rows),
            target=target_of(fake),
            chunk_rows=100,
            settings=WorkerSettings(heartbeat=2),
        )
        workers.start(
            redis_url,
            fake.environ(),
            "--metrics-port",
            "0",
            "--concurrency",
            "8",
            "--rate-limit",
            "400",
        )
        port = await metrics_port(workers)
        async with aiohttp.ClientSession() as http:
            during = samples(await scrape(http, port))
            status = await run_status(redis_url, submitted.run)
            deadline = time.monotonic() + TIMEOUT
            while True:
                after = samples(await scrape(http, port))
                if total(after, "enkash_sync_chunks_total", outcome="done") >= 3:
                    break
                assert time.monotonic() < deadline, after
                await asyncio.sleep(0.2)
        stats = fake.stats()
    finally:
        fake.stop()

    assert not status.complete  # the first scrape was taken while the run was going
    assert ("enkash_budget_rate", ()) in during
    # Every row had an outcome (a row failed on 429s is tried again in the chunk's next
    # pass, and a chunk SAQ runs again reports rows it finds done): 300 rows at EnKash.
    rows_ended = total(after, "enkash_sync_rows_total", outcome="created") + total(
        after, "enkash_sync_rows_total", outcome="found"
    )
    assert rows_ended >= 300
    assert stats["stored"] == 300
    # Each chunk done once (a job SAQ runs again for a chunk done is "repeated").
    assert total(after, "enkash_sync_chunks_total", outcome="done") == 3
    assert total(after, "enkash_requests_total", operation="customers.create", status="200") >= 300
    assert total(after, "enkash_rate_limited_total") > 0
    assert total(after, "enkash_retries_total") > 0  # a 429 is retried (until retries run out)
    assert 0 < after[("enkash_budget_rate", ())] < 400
    assert after[("enkash_requests_in_flight", ())] == 0


async def test_a_chunk_the_worker_cannot_run_counts_as_failed(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    # The run is for another EnKash account than the worker's: its chunk fails, unsent.
    environ = offline_environ()
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(3)])
    other = SyncTarget.for_token(environ["ENKASH_BASE_URL"], "another-account")
    await submit(redis_url, str(rows), target=other, settings=WorkerSettings(heartbeat=2))
    workers.start(redis_url, environ, "--metrics-port", "0")
    port = await metrics_port(workers)
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + TIMEOUT
        while True:
            scraped = samples(await scrape(http, port))
            if total(scraped, "enkash_sync_chunks_total", outcome="failed") >= 1:
                break
            assert time.monotonic() < deadline, workers.logs()
            await asyncio.sleep(0.2)

    assert total(scraped, "enkash_sync_chunks_total", outcome="done") == 0
    assert total(scraped, "enkash_requests_total") == 0


def offline_environ() -> dict[str, str]:
    """A worker's environment naming an EnKash nothing listens at (no request is sent)."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ENKASH")}
    environ.update(ENKASH_BASE_URL="http://127.0.0.1:9", ENKASH_TOKEN="not-a-secret-here")
    return environ


def test_a_metrics_port_in_use_is_exit_2_with_one_line(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        environ = offline_environ()
        done = subprocess.run(
            [*WORKER, "--redis", redis_url, "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
            check=False,
        )

    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: the metrics port 127.0.0.1:{port} is in use"
    )
    assert "Traceback" not in done.stderr
