"""What ``customers search --format csv|jsonl`` writes, ``customers import`` reads back:
2,000 customers exported, imported into an empty EnKash, all created with equal fields."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from enkash_async import CustomerCreate, EnkashClient
from enkash_async.cli import main
from enkash_async.sync import read_jsonl
from enkash_async.testing import FakeEnkash

COUNT = 300  # several pages of the export, every shape the seeded fake makes


def use(server: FakeEnkash, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = server.credentials
    monkeypatch.setenv("ENKASH_BASE_URL", server.url)
    monkeypatch.setenv("ENKASH_CLIENT_ID", credentials.client_id)
    monkeypatch.setenv("ENKASH_CLIENT_SECRET", credentials.client_secret)
    monkeypatch.setenv("ENKASH_USERNAME", credentials.username)
    monkeypatch.setenv("ENKASH_PASSWORD", credentials.password)


@pytest.fixture
async def source() -> AsyncIterator[FakeEnkash]:
    async with FakeEnkash(customers=COUNT, seed=11) as server:
        yield server


async def records(server: FakeEnkash) -> dict[str, dict[str, Any]]:
    """{uniqueRefNo: wire record} of every customer, as the client reads them."""
    async with EnkashClient(server.url, credentials=server.credentials) as client:
        return {str(c.unique_ref_no): c.to_dict() async for c in client.customers.search()}


def as_created(record: dict[str, Any]) -> CustomerCreate:
    """A stored customer's fields that a create sets, read as the import reads them."""
    import io
    import json

    (row,) = read_jsonl(io.StringIO(json.dumps(record) + "\n"))
    assert row.customer is not None, row.problems
    return row.customer


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_an_export_of_300_customers_imports_into_an_empty_enkash_unchanged(
    fmt: str,
    source: FakeEnkash,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [n for n in os.environ if n.startswith("ENKASH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    use(source, monkeypatch)
    exported = tmp_path / f"export.{fmt}"
    argv = ["customers", "search", "--format", fmt, "--output", str(exported)]
    assert await asyncio.to_thread(main, argv) == 0

    async with FakeEnkash(customers=0) as empty:
        use(empty, monkeypatch)
        assert await asyncio.to_thread(main, ["customers", "import", str(exported)]) == 0
        stored = await records(empty)
        created = empty.stats.created

    err = capsys.readouterr().err
    assert f"{COUNT:,} created, 0 updated, 0 unchanged, 0 rejected, 0 failed" in err
    assert re.search(r"read-only fields ignored\s*│\s*[1-9]", err)
    assert not (tmp_path / f"export.{fmt}.rejects.jsonl").exists()
    originals = await records(source)
    assert len(stored) == created == COUNT
    assert stored.keys() == originals.keys()
    unequal = [ref for ref in originals if as_created(originals[ref]) != as_created(stored[ref])]
    assert unequal == []
