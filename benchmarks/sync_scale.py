"""The distributed sync at scale, by hand: ``python -m benchmarks.sync_scale``.

Every part is real and local: a redis-server, the fake EnKash as a process, worker
processes (``python -m enkash_async sync worker``). Three measurements, each a
ratio within one run:

1. scaling: 1, 2 and 4 workers against 50 ms of added latency and no cap; throughput
   of 4 workers over 1 (target >= 3: the work waits on EnKash, not on the CPU);
2. a hidden cap (300 requests/s): 4 workers sharing one budget in Redis against 4
   workers each on its own limits; accepted creates/s as a share of the cap (target
   >= 0.9) and 429 replies per 1,000 creates (target <= 5);
3. recovery: seconds from a worker's SIGKILL to its chunk being started again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enkash_async.sync import SyncTarget
from enkash_async.sync.redis._saq import WorkerSettings, make_queue, run_status, submit
from enkash_async.sync.redis._server import RedisServer
from enkash_async.testing import FakeEnkashProcess


def _row(i: int) -> dict[str, Any]:
    name = f"Row {i} Traders Pvt Ltd"
    return {
        "legalName": name,
        "uniqueRefNo": f"BENCH-{i:08d}",
        "customerKeyContacts": [
            {"name": "Asha Rao", "legalName": name, "mobile": "9876543210", "deleted": False}
        ],
    }


def _workers(
    url: str, fake: FakeEnkashProcess, count: int, options: Sequence[str], log: Path | None = None
) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "enkash_async", "sync", "worker", "--redis", url]
    command += ["--log-level", "INFO" if log else "WARNING", *options]
    processes = []
    for _ in range(count):
        with open(log or os.devnull, "ab") as stream:
            processes.append(
                subprocess.Popen(
                    command, env=fake.environ(), stdout=stream, stderr=subprocess.STDOUT
                )
            )
    return processes


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


async def _run(
    redis: RedisServer,
    folder: Path,
    rows: int,
    workers: int,
    fake_options: Sequence[str],
    worker_options: Sequence[str],
    *,
    settings: WorkerSettings | None = None,
) -> tuple[float, dict[str, Any]]:
    """Sync ``rows`` rows with ``workers`` workers; (seconds, the fake's stats)."""
    redis.stop()
    redis.close()
    redis.start()
    path = folder / f"rows-{rows}.jsonl"
    if not path.exists():
        path.write_text("".join(json.dumps(_row(i)) + "\n" for i in range(rows)))
    fake = FakeEnkashProcess(*fake_options).start()
    processes = _workers(redis.url, fake, workers, worker_options)
    try:
        await asyncio.sleep(1.0)  # workers up and waiting
        started = time.monotonic()
        submitted = await submit(
            redis.url,
            str(path),
            target=SyncTarget.for_token(fake.url, fake.token),
            chunk_rows=max(50, rows // 40),
            settings=settings,
        )
        while not (await run_status(redis.url, submitted.run)).complete:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return time.monotonic() - started, fake.stats()
    finally:
        _stop(processes)
        fake.stop()


async def _recovery(redis: RedisServer, folder: Path, heartbeat: int, sweep: int) -> float:
    """Seconds from a worker's SIGKILL to its chunk's next attempt starting."""
    redis.stop()
    redis.close()
    redis.start()
    path = folder / "rows-recovery.jsonl"
    path.write_text("".join(json.dumps(_row(i)) + "\n" for i in range(2000)))
    fake = FakeEnkashProcess("--latency-create", "0.05").start()
    log = Path(tempfile.gettempdir()) / f"enkash-sync-recovery-{heartbeat}.log"
    processes = _workers(redis.url, fake, 2, ["--concurrency", "4", "--sweep", str(sweep)], log)
    queue = make_queue(redis.url)
    try:
        submitted = await submit(
            redis.url,
            str(path),
            target=SyncTarget.for_token(fake.url, fake.token),
            chunk_rows=250,
            settings=WorkerSettings(heartbeat=heartbeat),
        )
        victim = processes[0]
        keys = [f"{submitted.run}:{chunk}" for chunk in range(submitted.chunks)]
        chunk_key = None
        deadline = time.monotonic() + 60
        while chunk_key is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the victim never ran a chunk:\n" + log.read_text()[-3000:])
            await asyncio.sleep(0.2)
            for job in await queue.jobs(keys):
                if job and job.status == "active" and f":{victim.pid}:" in (job.worker_id or ""):
                    chunk_key = job.key
        await asyncio.sleep(0.5)  # mid-chunk
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while True:
            # Taken up again: active on another worker (a sweep's retry, or the reviver's
            # fresh job when SAQ's sweep lost it).
            job = await queue.job(chunk_key)
            if job and job.status == "active" and f":{victim.pid}:" not in (job.worker_id or ""):
                return time.monotonic() - killed
            await asyncio.sleep(0.05)
    finally:
        await queue.disconnect()
        _stop(processes)
        fake.stop()


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync_scale")
    parser.add_argument("--rows", type=int, default=2000, help="rows per scaling run")
    parser.add_argument("--cap", type=float, default=300.0, help="hidden cap, requests/s")
    parser.add_argument("--cap-rows", type=int, default=4000)
    parser.add_argument("--only", choices=["scaling", "cap", "recovery"])
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis:
        folder = Path(tmp)
        scaling = {}
        for workers in (1, 2, 4) if args.only in (None, "scaling") else ():
            seconds, stats = await _run(
                redis,
                folder,
                args.rows,
                workers,
                ["--latency-create", "0.05"],
                ["--concurrency", "4"],
            )
            assert stats["duplicate_refs"] == 0 and stats["stored"] == args.rows
            scaling[workers] = args.rows / seconds
            print(f"{workers} worker(s), 50 ms latency: {scaling[workers]:.0f} rows/s", flush=True)
        if scaling:
            results["scaling"] = scaling
            results["ratio_4_over_1"] = scaling[4] / scaling[1]
            print(f"4 workers / 1 worker: {results['ratio_4_over_1']:.2f} (target >= 3)")

        cap = args.cap
        for budget in ("shared", "local") if args.only in (None, "cap") else ():
            _, stats = await _run(
                redis,
                folder,
                args.cap_rows,
                4,
                ["--rate-limit", str(cap)],
                ["--concurrency", "16", "--budget", budget, "--rate-limit", str(cap * 0.97)],
            )
            span = stats["last_created_at"] - stats["first_created_at"]
            accepted = (stats["created"] - 1) / span
            results[budget] = {
                "accepted_share_of_cap": accepted / cap,
                "429_per_1000_creates": stats["rate_limited"] / stats["created"] * 1000,
                "duplicates": stats["duplicate_refs"],
            }
            print(
                f"hidden cap {cap:.0f}/s, {budget} budget: accepted {accepted:.0f}/s = "
                f"{accepted / cap:.2f} of the cap; "
                f"{results[budget]['429_per_1000_creates']:.1f} 429s per 1,000 creates",
                flush=True,
            )

        for heartbeat, sweep in ((10, 5), (2, 1)) if args.only in (None, "recovery") else ():
            seconds = await _recovery(redis, folder, heartbeat, sweep)
            results[f"recovery_heartbeat_{heartbeat}_sweep_{sweep}"] = seconds
            print(
                f"recovery (heartbeat {heartbeat}s, sweep every {sweep}s): {seconds:.1f}s",
                flush=True,
            )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
