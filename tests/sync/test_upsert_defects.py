"""The defects of issue 18 in ``customers import``, each as the user met it: a rerun on an
edited file sent nothing, an export imported back lost what a create cannot set, and a
ref repeated with other data was dropped without a word.

Each test uses only what the CLI offered before the upsert, so it failed on that code.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from enkash_async.cli import main
from enkash_async.sync._sources import READ_ONLY_FIELDS
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
        "address": f"{i} MG Road, Pune",
        "customerKeyContacts": [
            {
                "name": f"Asha {i}",
                "legalName": f"Asha Rao {i}",
                "mobile": f"98{i:08d}",
                "email": f"asha{i}@example.com",
                "deleted": False,
            }
        ],
        "uniqueRefNo": f"UP-{i:05d}",
    }


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


@pytest.mark.slow
async def test_a_rerun_after_editing_10_of_1500_rows_sends_exactly_those_edits(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await start(customers=0)
    use(server, monkeypatch)
    # 1,500: more than one checkpoint read (1,000 refs) and many search pages.
    rows = [wire_row(i) for i in range(1500)]
    source = write_jsonl(tmp_path / "customers.jsonl", rows)
    assert await run("customers", "import", str(source)) == 0
    capsys.readouterr()
    edited = list(range(100, 1500, 140))[:10]
    for i in edited:
        rows[i]["address"] = f"{i} Edited Street, Nagpur"
        rows[i]["customerKeyContacts"][0]["email"] = f"new{i}@example.com"
    write_jsonl(source, rows)

    assert await run("customers", "import", str(source)) == 0

    assert last_line(capsys.readouterr().err) == (
        "0 created, 10 updated, 1,490 unchanged, 0 rejected, 0 failed"
    )
    assert server.stats.requests["update"] == 10
    assert server.stats.created == 1500
    for i in edited:
        (stored,) = server.find_by_unique_ref(f"UP-{i:05d}")
        assert stored["address"] == f"{i} Edited Street, Nagpur"
        assert stored["customerKeyContacts"][0]["email"] == f"new{i}@example.com"


async def test_a_rerun_with_no_scan_reads_only_the_edited_rows_in_one_search(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await start(customers=0)
    use(server, monkeypatch)
    rows = [wire_row(i) for i in range(60)]
    source = write_jsonl(tmp_path / "customers.jsonl", rows)
    assert await run("customers", "import", str(source), "--no-scan") == 0
    searches = server.stats.requests["search"]
    for i in (3, 30, 59):
        rows[i]["address"] = f"{i} Edited Street"
    write_jsonl(source, rows)
    capsys.readouterr()

    assert await run("customers", "import", str(source), "--no-scan") == 0

    assert last_line(capsys.readouterr().err) == (
        "0 created, 3 updated, 57 unchanged, 0 rejected, 0 failed"
    )
    assert server.stats.requests["search"] - searches == 1  # the 3 records, by customerIds
    assert server.stats.requests["update"] == 3


async def test_a_dry_run_names_the_fields_an_edit_would_change(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await start(customers=0)
    use(server, monkeypatch)
    rows = [wire_row(i) for i in range(5)]
    source = write_jsonl(tmp_path / "customers.jsonl", rows)
    assert await run("customers", "import", str(source)) == 0
    rows[2]["address"] = "2 Edited Street"
    write_jsonl(source, rows)
    capsys.readouterr()

    assert await run("customers", "import", str(source), "--dry-run") == 0

    err = capsys.readouterr().err
    assert last_line(err) == "0 would be created, 1 would be updated, 4 unchanged, 0 rejected"
    assert re.search(r"would change: address\s*│\s*1", err)
    assert "update" not in server.stats.requests or server.stats.requests["update"] == 0


def read_csv_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return {row["uniqueRefNo"]: row for row in csv.DictReader(stream)}


def assigned_by_enkash(column: str) -> bool:
    """True for a column of a field EnKash assigns (ids, timestamps, created/modified by)."""
    parts = column.split(".")
    if len(parts) == 1:
        return column in READ_ONLY_FIELDS[""]
    return parts[0] in READ_ONLY_FIELDS and parts[-1] in READ_ONLY_FIELDS[parts[0]]


def written(row: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in row.items() if v != "" and not assigned_by_enkash(k)}


@pytest.mark.slow
async def test_an_export_imported_into_an_empty_enkash_exports_the_same(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = await start(customers=300, seed=9)
    use(source, monkeypatch)
    first = tmp_path / "first.csv"
    assert await run("customers", "search", "--format", "csv", "--output", str(first)) == 0
    empty = await start(customers=0)
    use(empty, monkeypatch)
    capsys.readouterr()

    assert await run("customers", "import", str(first)) == 0

    err = capsys.readouterr().err
    second = tmp_path / "second.csv"
    assert await run("customers", "search", "--format", "csv", "--output", str(second)) == 0
    before, after = read_csv_rows(first), read_csv_rows(second)
    assert before.keys() == after.keys()
    unequal = [ref for ref in before if written(before[ref]) != written(after[ref])]
    assert unequal == []
    inactive = [ref for ref, row in before.items() if row["active"] == "false"]
    branches = [ref for ref, row in before.items() if row.get("branchCodes.0")]
    assert inactive and branches  # the seed has both, so the test can fail
    assert all(after[ref]["active"] == "false" for ref in inactive)
    ids = sum(1 for row in before.values() if row["customerId"])
    assert re.search(rf"ignored: customerId\s*│\s*{ids}\b", err)


async def test_a_ref_repeated_with_other_data_is_rejected_not_dropped(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await start(customers=0)
    use(server, monkeypatch)
    other = wire_row(1)
    other["address"] = "Somewhere else"
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), wire_row(2), other])

    assert await run("customers", "import", str(source), "--dry-run") == 1
    assert "2 would be created, 0 would be updated, 0 unchanged, 1 rejected" in last_line(
        capsys.readouterr().err
    )
    assert await run("customers", "import", str(source)) == 1

    (reject,) = [
        json.loads(line)
        for line in (tmp_path / "customers.jsonl.rejects.jsonl").read_text().splitlines()
    ]
    assert (reject["line"], reject["outcome"]) == (3, "rejected")
    assert "line 1" in reject["reasons"][0]
    assert server.stats.created == 2


async def test_a_rerun_settles_rows_written_before_without_building_them(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from enkash_async.sync import _sources

    server = await start(customers=0)
    use(server, monkeypatch)
    rows = [wire_row(i) for i in range(30)]
    source = write_jsonl(tmp_path / "customers.jsonl", rows)
    assert await run("customers", "import", str(source), "--no-scan") == 0
    rows[4]["address"] = "4 Edited Street"
    rows.append(dict(rows[9], address="Other data, same ref"))  # line 31 repeats line 10
    write_jsonl(source, rows)
    built: list[int] = []
    original = _sources._jsonl_row

    def counted(number: int, line: str) -> Any:
        built.append(number)
        return original(number, line)

    monkeypatch.setattr(_sources, "_jsonl_row", counted)
    capsys.readouterr()

    assert await run("customers", "import", str(source), "--no-scan") == 1

    assert sorted(built) == [5, 31]  # the edited row and the conflicting repeat only
    assert last_line(capsys.readouterr().err).startswith(
        "0 created, 1 updated, 29 unchanged, 1 rejected"
    )
    assert server.find_by_unique_ref("UP-00004")[0]["address"] == "4 Edited Street"
    assert server.find_by_unique_ref("UP-00009")[0]["address"] == "9 MG Road, Pune"
