"""The four defects of issue 9 in ``customers import``, each as the user met it.

Each test uses only what the CLI offered before the sync core, so it runs (and failed)
on the code as it was.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from enkash_async.cli import main
from enkash_async.testing import FakeEnkash

Run = Callable[..., Awaitable[int]]
Start = Callable[..., Awaitable[FakeEnkash]]

# Every test runs without the caller's ENKASH_* configuration or CLI state.
pytestmark = pytest.mark.usefixtures("no_enkash_environment")


@pytest.fixture
async def server(start: Start) -> FakeEnkash:
    return await start(customers=0)


def use(server: FakeEnkash, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = server.credentials
    monkeypatch.setenv("ENKASH_BASE_URL", server.url)
    monkeypatch.setenv("ENKASH_CLIENT_ID", credentials.client_id)
    monkeypatch.setenv("ENKASH_CLIENT_SECRET", credentials.client_secret)
    monkeypatch.setenv("ENKASH_USERNAME", credentials.username)
    monkeypatch.setenv("ENKASH_PASSWORD", credentials.password)


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
def cli(server: FakeEnkash, monkeypatch: pytest.MonkeyPatch) -> Run:
    use(server, monkeypatch)
    return run


def wire_row(i: int) -> dict[str, Any]:
    contact = {
        "name": f"Asha {i}",
        "legalName": f"Asha Rao {i}",
        "mobile": f"98{i:08d}",
        "deleted": False,
    }
    return {
        "legalName": f"Row {i} Traders Pvt Ltd",
        "customerKeyContacts": [contact],
        "uniqueRefNo": f"IMP-{i:04d}",
    }


def csv_row(i: int) -> dict[str, str]:
    wire = wire_row(i)
    row = {"uniqueRefNo": wire["uniqueRefNo"], "legalName": wire["legalName"]}
    for field, value in wire["customerKeyContacts"][0].items():
        row[f"customerKeyContacts.0.{field}"] = str(value).lower() if value is False else value
    return row


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stored_once(server: FakeEnkash, ref: str) -> dict[str, Any]:
    found = server.find_by_unique_ref(ref)
    assert len(found) == 1, f"{ref} is stored {len(found)} times"
    return found[0]


async def test_rows_inserted_above_imported_ones_are_created_and_nothing_twice(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    first = [dict(wire_row(i), uniqueRefNo=f"FX-{i}") for i in (1, 2)]
    source = write_jsonl(tmp_path / "fix.jsonl", first)
    assert await cli("customers", "import", str(source)) == 0

    inserted = dict(wire_row(0), uniqueRefNo="FX-0")
    write_jsonl(source, [inserted, *first])
    assert await cli("customers", "import", str(source)) == 0

    for ref in ("FX-0", "FX-1", "FX-2"):
        stored_once(server, ref)
    assert server.stats.created == 3


async def test_a_fake_trial_run_does_not_stop_the_real_import(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "fk.jsonl", [wire_row(i) for i in range(1, 21)])
    assert await run("customers", "import", "--fake", str(source)) == 0

    assert await cli("customers", "import", str(source)) == 0

    assert server.stats.created == 20
    assert capsys.readouterr().err.splitlines()[-1].startswith("20 created")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_a_search_export_imports_back_into_an_empty_enkash(
    fmt: str,
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await start(customers=150, seed=9)
    use(source, monkeypatch)
    exported = tmp_path / f"export.{fmt}"
    assert await run("customers", "search", "--format", fmt, "--output", str(exported)) == 0
    empty = await start(customers=0)
    use(empty, monkeypatch)

    assert await run("customers", "import", str(exported)) == 0

    assert empty.stats.created == 150
    assert "150 created, 0" in capsys.readouterr().err


async def test_an_unclosed_quote_is_reported_on_its_line_and_the_next_row_is_imported(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "customers.csv", [csv_row(i) for i in range(1, 6)])
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace("Row 2 Traders", '"Row 2 Traders', 1)  # opened, never closed
    source.write_text("".join(lines), encoding="utf-8")

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / "customers.csv.rejects.jsonl")
    assert reject.get("line") == 3  # the file's line, the header being line 1
    assert "unclosed quote" in json.dumps(reject)
    assert {c["uniqueRefNo"] for c in server.created_customers} == {
        "IMP-0001",
        "IMP-0003",
        "IMP-0004",
        "IMP-0005",
    }
