"""Several ``customers import`` processes on one file and one checkpoint, released together:
each customer is created once, whichever process holds its intent (issue 19)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import enkash_async
from enkash_async import CustomerCreate, EnkashClient
from enkash_async.sync import SqliteCheckpoint, SyncOutcome, SyncTarget, sync_rows
from enkash_async.testing import FakeEnkash, FakeEnkashProcess

Start = Callable[..., Awaitable[FakeEnkash]]

ROWS = 900
PROCESSES = 3
_ROOT = Path(enkash_async.__file__).resolve().parents[1]

# Each process imports everything, then waits at the barrier (a file appearing), so all
# three reach the checkpoint in the same few milliseconds.
_BARRIER = """
import sys, time
from pathlib import Path
from enkash_async.cli import main
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
sys.exit(main(sys.argv[2:]))
"""


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENKASH_")}
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")])
    return {**env, **extra}


@pytest.fixture
async def enkash() -> AsyncIterator[FakeEnkashProcess]:
    """A fake EnKash in its own process; a create takes 30 ms, so creates overlap."""
    options = ("--customers", "0", "--latency-create", "0.03")
    async with FakeEnkashProcess(*options, env=_env({})) as fake:
        yield fake


def _row(i: int) -> dict[str, Any]:
    contact = {"name": f"Asha {i}", "legalName": f"Asha Rao {i}", "mobile": f"98{i:08d}"}
    return {
        "legalName": f"Race {i} Traders Pvt Ltd",
        "uniqueRefNo": f"RC-{i:05d}",
        "customerKeyContacts": [{**contact, "deleted": False}],
    }


@pytest.mark.slow
async def test_three_imports_released_together_create_each_customer_once(
    enkash: FakeEnkashProcess, tmp_path: Path
) -> None:
    source = tmp_path / "customers.jsonl"
    source.write_text("".join(json.dumps(_row(i)) + "\n" for i in range(ROWS)), "utf-8")
    env = _env({**enkash.environ(), "XDG_STATE_HOME": str(tmp_path / "state")})
    go = tmp_path / "go"
    command = ["customers", "import", str(source), "--concurrency", "16", "--no-scan"]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _BARRIER,
            str(go),
            *command,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]
    await asyncio.sleep(1.0)  # every process is at the barrier (imports take ~0.3 s)
    go.touch()
    results = [await asyncio.wait_for(p.communicate(), timeout=180) for p in processes]
    stats = await asyncio.to_thread(enkash.stats)
    extra = stats["stored"] - ROWS
    print(f"{PROCESSES} imports of {ROWS} refs: {stats['stored']} stored, {extra} extra")
    assert (stats["stored"], stats["duplicate_refs"], stats["unique_refs"]) == (ROWS, 0, ROWS)
    for process, (_, errors) in zip(processes, results, strict=True):
        assert process.returncode == 0, errors.decode()[-2000:]


def _customer(i: int) -> CustomerCreate:
    return CustomerCreate.from_dict(_row(i))


async def test_a_row_another_live_run_intends_waits_unsent_and_is_found_when_it_is_done(
    start: Start, tmp_path: Path
) -> None:
    server = await start(customers=0)
    target = SyncTarget.for_user(server.url, "u")
    other = SqliteCheckpoint(tmp_path / "c.sqlite", target)
    mine = SqliteCheckpoint(tmp_path / "c.sqlite", target)
    await other.claim(["RC-00001"])  # the other run is creating it now
    seen: list[SyncOutcome] = []
    async with EnkashClient(server.url, credentials=server.credentials) as client:
        syncing = asyncio.ensure_future(
            sync_rows(
                [_customer(1), _customer(2)], client=client, checkpoint=mine, on_outcome=seen.append
            )
        )
        await asyncio.sleep(1.5)
        assert [o.ref for o in seen] == ["RC-00002"]  # RC-00001 waits
        made = await client.customers.create(_customer(1))
        await other.mark_done("RC-00001", made.customer_id)
        await other.aclose()
        summary = await asyncio.wait_for(syncing, 30)
    await mine.aclose()

    assert (summary.created, summary.unchanged) == (1, 1)
    assert [(o.ref, o.detail) for o in seen][1] == ("RC-00001", "another run")
    assert server.stats.requests["create"] == 2  # the other run's and RC-00002's


async def test_a_dead_owners_intent_is_looked_up_before_any_create(
    start: Start, tmp_path: Path
) -> None:
    server = await start(customers=0)
    target = SyncTarget.for_user(server.url, "u")
    dead = SqliteCheckpoint(tmp_path / "c.sqlite", target, lease=0.3)
    await dead.claim(["RC-00001"])
    dead._renewer.cancel()  # type: ignore[union-attr]  # its process died after sending:
    async with EnkashClient(server.url, credentials=server.credentials) as client:
        await client.customers.create(_customer(1))
        mine = SqliteCheckpoint(tmp_path / "c.sqlite", target)
        summary = await asyncio.wait_for(
            sync_rows([_customer(1)], client=client, checkpoint=mine), 30
        )
        await mine.aclose()

    assert (summary.created, summary.unchanged) == (0, 1)
    assert server.stats.requests["create"] == 1
