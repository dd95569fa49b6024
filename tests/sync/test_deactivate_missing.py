"""``customers import --deactivate-missing`` and ``deactivate_missing``: customers a
checkpoint knows that the file no longer lists are deactivated, within a share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from enkash_async import CustomerCreate, EnkashClient
from enkash_async.cli import main
from enkash_async.sync import (
    DEACTIVATED,
    DeactivationRefusedError,
    SqliteCheckpoint,
    SyncTarget,
    deactivate_missing,
)
from enkash_async.testing import FakeEnkash

Start = Callable[..., Awaitable[FakeEnkash]]

pytestmark = pytest.mark.usefixtures("no_enkash_environment")


def use(server: FakeEnkash, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = server.credentials
    monkeypatch.setenv("ENKASH_BASE_URL", server.url)
    monkeypatch.setenv("ENKASH_CLIENT_ID", credentials.client_id)
    monkeypatch.setenv("ENKASH_CLIENT_SECRET", credentials.client_secret)
    monkeypatch.setenv("ENKASH_USERNAME", credentials.username)
    monkeypatch.setenv("ENKASH_PASSWORD", credentials.password)


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def wire_row(i: int) -> dict[str, Any]:
    return {
        "legalName": f"Row {i} Traders Pvt Ltd",
        "customerKeyContacts": [
            {"name": f"A {i}", "legalName": f"A Rao {i}", "mobile": f"98{i:08d}", "deleted": False}
        ],
        "uniqueRefNo": f"DM-{i:03d}",
    }


def write_jsonl(path: Path, numbers: Sequence[int]) -> Path:
    path.write_text("".join(json.dumps(wire_row(i)) + "\n" for i in numbers), encoding="utf-8")
    return path


def active(server: FakeEnkash, i: int) -> bool:
    (stored,) = server.find_by_unique_ref(f"DM-{i:03d}")
    return bool(stored["active"])


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


@pytest.fixture
async def imported(
    start: Start, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[FakeEnkash, Path]:
    """20 customers imported from customers.jsonl (its checkpoint beside it)."""
    server = await start(customers=0)
    use(server, monkeypatch)
    source = write_jsonl(tmp_path / "customers.jsonl", range(20))
    assert await run("customers", "import", str(source)) == 0
    return server, source


async def test_a_customer_the_file_no_longer_lists_is_deactivated_once(
    imported: tuple[FakeEnkash, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, source = imported
    write_jsonl(source, [i for i in range(20) if i != 7])
    capsys.readouterr()

    assert await run("customers", "import", str(source), "--deactivate-missing") == 0

    assert last_line(capsys.readouterr().err).endswith(", 1 deactivated")
    assert not active(server, 7)
    assert all(active(server, i) for i in range(20) if i != 7)
    assert server.stats.requests["deactivate"] == 1
    assert await run("customers", "import", str(source), "--deactivate-missing") == 0
    assert server.stats.requests["deactivate"] == 1  # not sent again
    assert last_line(capsys.readouterr().err).endswith(", 0 deactivated")


async def test_the_dry_run_shows_the_deactivations_and_sends_none(
    imported: tuple[FakeEnkash, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, source = imported
    write_jsonl(source, [i for i in range(20) if i != 3])
    capsys.readouterr()

    assert await run("customers", "import", str(source), "--deactivate-missing", "--dry-run") == 0

    assert last_line(capsys.readouterr().err).endswith(", 1 would be deactivated")
    assert active(server, 3)
    assert server.stats.requests.get("deactivate", 0) == 0


async def test_more_missing_than_the_share_is_refused_until_the_share_is_raised(
    imported: tuple[FakeEnkash, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, source = imported
    write_jsonl(source, range(17))  # 3 of 20 missing: 15%
    capsys.readouterr()

    assert await run("customers", "import", str(source), "--deactivate-missing") == 1

    err = capsys.readouterr().err
    assert "refusing to deactivate 3 of the 20" in err
    assert "--max-deactivate 0.151" in err
    assert server.stats.requests.get("deactivate", 0) == 0
    argv = ("customers", "import", str(source), "--deactivate-missing", "--max-deactivate", "0.2")
    assert await run(*argv) == 0
    assert [active(server, i) for i in (17, 18, 19)] == [False, False, False]


async def test_a_deactivated_customer_listed_again_is_made_active(
    imported: tuple[FakeEnkash, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, source = imported
    write_jsonl(source, [i for i in range(20) if i != 5])
    assert await run("customers", "import", str(source), "--deactivate-missing") == 0
    assert not active(server, 5)
    write_jsonl(source, range(20))
    capsys.readouterr()

    assert await run("customers", "import", str(source)) == 0

    assert last_line(capsys.readouterr().err).startswith("0 created, 1 updated, 19 unchanged")
    assert active(server, 5)


async def test_deactivate_missing_refuses_before_sending_anything(
    start: Start, tmp_path: Path
) -> None:
    server = await start(customers=0)
    store = SqliteCheckpoint(tmp_path / "c.sqlite", SyncTarget.for_user(server.url, "u"))
    async with EnkashClient(server.url, credentials=server.credentials) as client:
        for i in range(4):
            made = await client.customers.create(CustomerCreate.from_dict(wire_row(i)))
            await store.mark_done(f"DM-{i:03d}", made.customer_id, "f")
        await store.mark_done("DM-009", None, DEACTIVATED)  # deactivated earlier: not known

        with pytest.raises(DeactivationRefusedError) as refused:
            await deactivate_missing(client, store, {"DM-000", "DM-001"}, max_share=0.25)
        summary = await deactivate_missing(client, store, {"DM-000", "DM-001"}, max_share=0.5)
    await store.aclose()

    assert (refused.value.missing, refused.value.known) == (2, 4)
    assert summary.deactivated == 2
    assert server.stats.requests["deactivate"] == 2
