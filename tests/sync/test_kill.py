"""``customers import`` killed with SIGKILL at random points, then rerun, against a fake
EnKash in its own process: EnKash ends with exactly the file's customers, each once."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import enkash_async
from enkash_async import EnkashClient
from enkash_async.testing import FakeEnkashProcess

ROWS = 600
KILLS = 3
# The checkout root, so the children import this enkash_async even when not installed.
_ROOT = Path(enkash_async.__file__).resolve().parents[1]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENKASH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")])
    return {**env, **extra}


@pytest.fixture
async def enkash() -> AsyncIterator[dict[str, Any]]:
    """A fake EnKash in its own process, each create taking 10 ms."""
    options = ("--customers", "0", "--latency-create", "0.01")
    async with FakeEnkashProcess(*options, env=_env({})) as fake:
        yield fake.info


def _row(i: int) -> dict[str, Any]:
    contact = {
        "name": f"Asha {i}",
        "legalName": f"Asha Rao {i}",
        "mobile": f"98{i:08d}",
        "deleted": False,
    }
    return {
        "legalName": f"Kill {i} Traders Pvt Ltd",
        "uniqueRefNo": f"KL-{i:05d}",
        "customerKeyContacts": [contact],
    }


async def _stored(client: EnkashClient) -> int:
    page = await client.customers.search(page_size=1, max_items=1).pages().__anext__()
    return page.records_count or 0


@pytest.mark.slow
async def test_reruns_after_several_kill_9_leave_exactly_the_files_customers(
    enkash: dict[str, Any], tmp_path: Path
) -> None:
    source = tmp_path / "customers.jsonl"
    source.write_text("".join(json.dumps(_row(i)) + "\n" for i in range(ROWS)), "utf-8")
    env = _env(
        {
            "ENKASH_BASE_URL": enkash["url"],
            "ENKASH_CLIENT_ID": enkash["client_id"],
            "ENKASH_CLIENT_SECRET": enkash["client_secret"],
            "ENKASH_USERNAME": enkash["username"],
            "ENKASH_PASSWORD": enkash["password"],
            "XDG_STATE_HOME": str(tmp_path / "state"),
            # A killed run's intents are taken over once its lease runs out: 2 s, not 30,
            # so each rerun waits that long rather than half a minute (runs never overlap).
            "ENKASH_SYNC_LEASE_SECONDS": "2",
        }
    )
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    # Kill points are counts of customers EnKash holds, not moments: random, yet each
    # kill lands while that run is creating, however slow the machine.
    points = sorted(rng.sample(range(20, ROWS - 20), KILLS))
    command = [
        sys.executable,
        "-m",
        "enkash_async",
        "customers",
        "import",
        str(source),
        "--concurrency",
        "16",
        "--no-scan",
    ]
    killed = 0
    async with EnkashClient(enkash["url"], token=enkash["token"]) as client:
        for point in points:
            process = await asyncio.create_subprocess_exec(
                *command,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            for _ in range(3000):  # bounded: at most 60 s
                if process.returncode is not None or await _stored(client) >= point:
                    break
                await asyncio.sleep(0.02)
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            await process.wait()
        assert killed, f"no run was killed (seed {seed})"

        final = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, errors = await asyncio.wait_for(final.communicate(), timeout=120)
        assert final.returncode == 0, errors.decode()

        refs = Counter([c.unique_ref_no async for c in client.customers.search()])
    duplicated = sorted(ref for ref, count in refs.items() if count > 1)
    missing = sorted({f"KL-{i:05d}" for i in range(ROWS)} - set(refs))
    assert (duplicated, missing) == ([], []), f"seed {seed}"
    assert sum(refs.values()) == ROWS
    # For the record (pytest -s): what the final rerun did after the kills.
    last = errors.decode().splitlines()[-1]
    print(f"kills at {points} (seed {seed}): {killed} killed; rerun: {last}")
