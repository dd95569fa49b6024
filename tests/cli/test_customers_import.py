"""``enkash-async customers import``: a CSV or JSONL file, checkpointed and resumable."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _cli import (
    RecordedBar,
    Run,
    Start,
    checkpoint_ids,
    checkpoint_states,
    create_directly,
    csv_row,
    listing,
    no_traceback,
    read_jsonl,
    run,
    stored_once,
    summary,
    target_of,
    use,
    wire_row,
    write_csv,
    write_jsonl,
)

from enkash_async.cli import main
from enkash_async.sync import CheckpointError, SqliteCheckpoint
from enkash_async.testing import FakeEnkash, Fault


def rejects_of(path: Path) -> dict[int, dict[str, Any]]:
    """{file line: entry} of a rejects file."""
    return {entry["line"]: entry for entry in read_jsonl(path)}


async def test_import_csv_creates_each_row_with_its_nested_columns(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "customers.csv", [csv_row(i) for i in range(1, 31)])

    assert await cli("customers", "import", str(source), "--concurrency", "4") == 0

    for i in range(1, 31):
        stored = stored_once(server, f"IMP-{i:04d}")
        expected = wire_row(i)
        assert stored["legalName"] == expected["legalName"]
        mobiles = [c["mobile"] for c in stored["customerKeyContacts"]]
        assert mobiles == [c["mobile"] for c in expected["customerKeyContacts"]]
        reminders = [
            (r["dueDateDifference"], r["reminderType"]) for r in stored["customerReminders"]
        ]
        assert reminders == ([(i, "ONCE")] if i % 3 == 0 else [])
    assert server.stats.created == 30
    assert not (tmp_path / "customers.csv.rejects.jsonl").exists()
    states = checkpoint_states(tmp_path / "customers.csv.checkpoint.sqlite")
    assert states == {f"IMP-{i:04d}": "done" for i in range(1, 31)}


async def test_import_jsonl_creates_each_row(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 21)])

    assert await cli("customers", "import", str(source)) == 0

    for i in range(1, 21):
        assert stored_once(server, f"IMP-{i:04d}")["legalName"] == f"Row {i} Traders Pvt Ltd"
    assert server.stats.created == 20
    assert "20 created, 0 updated, 0 unchanged, 0 rejected, 0 failed" in capsys.readouterr().err


async def test_import_summary_table_counts_each_outcome_with_elapsed_and_rate(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_directly(server, [wire_row(1)])
    bad = wire_row(3)
    bad["customerKeyContacts"][0]["mobile"] = "12"
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), wire_row(2), bad])

    assert await cli("customers", "import", str(source)) == 1

    table = summary(capsys.readouterr().err)
    assert {k: table[k] for k in ("created", "updated", "unchanged", "rejected", "failed")} == {
        "created": "1",
        "updated": "0",
        "unchanged": "1",
        "rejected": "1",
        "failed": "0",
    }
    assert table["elapsed"].endswith(" s")
    assert table["rate"].endswith("rows/s")


async def test_import_summary_gives_the_scans_own_time_and_customers_read(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_directly(server, [wire_row(i) for i in range(1, 8)])
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), wire_row(2)])
    in_enkash = server.stored_count  # what the scan reads, before the import adds one

    assert await cli("customers", "import", str(source)) == 0

    table = summary(capsys.readouterr().err)
    (scan,) = [key for key in table if key.startswith("of which reading EnKash's")]
    assert scan == f"of which reading EnKash's {in_enkash:,} customers"
    assert table[scan].endswith(" s")


async def test_import_with_no_scan_gives_no_scan_time(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1)])

    assert await cli("customers", "import", str(source), "--no-scan") == 0

    assert not any("reading EnKash" in key for key in summary(capsys.readouterr().err))


async def test_import_progress_bar_has_the_file_rows_as_total_and_advances_once_per_row(
    cli: Run, server: FakeEnkash, tmp_path: Path, bars: list[RecordedBar]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 13)])

    assert await cli("customers", "import", str(source)) == 0

    scan, bar = bars
    assert scan.description == "reading EnKash's customers"
    assert scan.total == scan.advanced == 200  # the server's customers, read once
    assert str(source) in bar.description
    assert bar.total == 12
    assert bar.advanced == server.stats.created == 12


async def test_import_sends_at_most_concurrency_creates_at_once(
    start: Start, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = await start(latency={"create": 0.05})
    use(server, monkeypatch)
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 16)])

    assert await run("customers", "import", str(source), "--concurrency", "3") == 0

    assert server.stats.created == 15
    assert 2 <= server.stats.peak_in_flight <= 3


@pytest.mark.slow
async def test_import_concurrency_above_the_client_default_is_honoured(
    start: Start, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = await start(latency={"create": 1.0})
    use(server, monkeypatch)
    source = write_jsonl(tmp_path / "many.jsonl", [wire_row(i) for i in range(1, 131)])

    assert await run("customers", "import", str(source), "--concurrency", "130") == 0

    assert server.stats.created == 130
    assert server.stats.peak_in_flight > 100  # the client's default limit


async def test_import_rejects_rows_it_cannot_build_naming_the_file_line_and_why(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [csv_row(i) for i in range(1, 7)]
    rows[1]["customerKeyContacts.0.mobile"] = "12"  # line 3: fails validation
    rows[3]["customerKeyContacts.0.deleted"] = "maybe"  # line 5: not a boolean
    del rows[4]["legalName"]  # line 6: a required field is missing
    source = write_csv(tmp_path / "customers.csv", rows)

    assert await cli("customers", "import", str(source)) == 1

    rejects = rejects_of(tmp_path / "customers.csv.rejects.jsonl")
    assert set(rejects) == {3, 5, 6}
    assert any(r.startswith("customerKeyContacts.0.mobile: ") for r in rejects[3]["reasons"])
    assert "customerKeyContacts.0.deleted: must be true or false" in rejects[5]["reasons"][0]
    assert any(r.startswith("legalName: ") for r in rejects[6]["reasons"])
    assert {c["uniqueRefNo"] for c in server.created_customers} == {
        "IMP-0001",
        "IMP-0003",
        "IMP-0006",
    }
    err = capsys.readouterr().err
    assert "3 created, 0 updated, 0 unchanged, 3 rejected" in err
    assert f"3 rows listed in {tmp_path / 'customers.csv.rejects.jsonl'}" in err
    assert no_traceback(err)


async def test_import_lists_rows_enkash_refuses_as_failed_with_its_reason(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    server.inject(
        Fault.status(400, error_type="VALIDATION_ERROR", message="PAN already registered"),
        route="create",
        times=1,
    )
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 4)])

    # One at a time, so the refused request is line 1's.
    assert await cli("customers", "import", str(source), "--concurrency", "1") == 1

    (reject,) = read_jsonl(tmp_path / "customers.jsonl.rejects.jsonl")
    assert (reject["line"], reject["outcome"]) == (1, "failed")
    assert "PAN already registered" in reject["reasons"][0]
    assert server.find_by_unique_ref("IMP-0001") == []
    assert {c["uniqueRefNo"] for c in server.created_customers} == {"IMP-0002", "IMP-0003"}


@pytest.mark.parametrize(
    ("column", "cell", "complaint"),
    [
        ("customerKeyContacts.0.deleted", "maybe", "deleted: must be true or false"),
        ("customerReminders.0.dueDateDifference", "soon", "must be a whole number"),
        ("legalName.short", "Acme", "clashes with another column"),
        ("customerKeyContacts.0", "x", "customerKeyContacts.0: must be an object"),
        ("customerKeyContacts.1000000.mobile", "9876543210", "too large"),
    ],
    ids=["boolean", "integer", "scalar-and-nested", "trailing-index", "huge-index"],
)
async def test_import_bad_csv_cells_reject_their_row_only(
    column: str,
    cell: str,
    complaint: str,
    cli: Run,
    server: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [csv_row(i) for i in (1, 3, 5)]
    for row in rows:
        row.setdefault(column, "")
    rows[1][column] = cell  # line 3
    source = write_csv(tmp_path / "customers.csv", rows)

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / "customers.csv.rejects.jsonl")
    assert reject["line"] == 3
    assert complaint in " ".join(reject["reasons"])
    assert no_traceback(capsys.readouterr().err)
    assert {c["uniqueRefNo"] for c in server.created_customers} == {"IMP-0001", "IMP-0005"}


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ('{"legalName": "Acme", ', "not valid JSON"),
        ("[1, 2, 3]", "must be a JSON object"),
        ('{"legalName": "Acme", "customerKeyContacts": [], "shoeSize": 9}', "shoeSize"),
    ],
    ids=["truncated", "array", "unknown-field"],
)
async def test_import_bad_jsonl_lines_reject_their_row_only(
    line: str,
    complaint: str,
    cli: Run,
    server: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), line, wire_row(3)])

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / "customers.jsonl.rejects.jsonl")
    assert reject["line"] == 2
    assert complaint in json.dumps(reject)
    assert no_traceback(capsys.readouterr().err)
    assert {c["uniqueRefNo"] for c in server.created_customers} == {"IMP-0001", "IMP-0003"}


@pytest.mark.parametrize(("suffix", "line"), [(".csv", 3), (".jsonl", 2)])
async def test_import_a_row_that_is_not_utf8_is_rejected_by_its_line(
    suffix: str,
    line: int,
    cli: Run,
    server: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / f"customers{suffix}"
    if suffix == ".csv":
        write_csv(source, [csv_row(i) for i in (1, 2, 3)])
    else:
        write_jsonl(source, [wire_row(i) for i in (1, 2, 3)])
    # Row 2's legal name in Latin-1, as a spreadsheet export might have it.
    source.write_bytes(source.read_bytes().replace(b"Row 2 Traders", b"Caf\xe9 2 Traders"))

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / f"customers{suffix}.rejects.jsonl")
    assert reject["line"] == line
    assert "not UTF-8" in reject["reasons"][0]
    assert no_traceback(capsys.readouterr().err)
    assert {c["uniqueRefNo"] for c in server.created_customers} == {"IMP-0001", "IMP-0003"}


@pytest.mark.parametrize(
    ("name", "complaint"),
    [("missing.csv", "No such file"), ("customers.xlsx", "use a .csv or .jsonl file")],
    ids=["missing", "wrong-kind"],
)
def test_import_of_an_unusable_file_says_so_and_leaves_no_files_behind(
    name: str, complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / name
    if name.endswith(".xlsx"):
        source.write_bytes(b"PK\x03\x04")

    assert main(["customers", "import", "--fake", str(source)]) == 2

    err = capsys.readouterr().err
    assert complaint in err
    assert str(source) in err
    assert no_traceback(err)
    assert listing(tmp_path) == ([name] if source.exists() else [])


def test_import_of_a_missing_file_without_credentials_names_the_file_not_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["customers", "import", str(tmp_path / "missing.csv")]) == 2

    err = capsys.readouterr().err
    assert "missing.csv" in err
    assert "ENKASH_" not in err


def test_import_with_fake_runs_against_an_embedded_server_and_keeps_no_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 6)])

    assert main(["customers", "import", "--fake", str(source)]) == 0

    assert "5 created, 0 updated, 0 unchanged, 0 rejected, 0 failed" in capsys.readouterr().err
    assert listing(tmp_path) == ["customers.jsonl"]


async def test_import_rerun_after_a_crash_looks_up_intended_refs_and_creates_only_the_rest(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [wire_row(i) for i in range(1, 11)]
    source = write_jsonl(tmp_path / "customers.jsonl", rows)
    # The crashed run: refs 1-7 were marked intended; EnKash has 1-5 but the run only
    # recorded 1-3 as done. Refs 6 and 7 never reached EnKash.
    ids = await create_directly(server, rows[:5])
    checkpoint = tmp_path / "customers.jsonl.checkpoint.sqlite"
    store = SqliteCheckpoint(checkpoint, target_of(server))
    await store.mark_intended([f"IMP-{i:04d}" for i in range(1, 8)])
    for i in range(1, 4):
        await store.mark_done(f"IMP-{i:04d}", ids[i - 1])
    await store.aclose()
    before = server.stats.created

    # --no-scan: only the checkpoint and the lookups tell what EnKash has.
    assert await cli("customers", "import", str(source), "--concurrency", "3", "--no-scan") == 0

    assert server.stats.created - before == 5  # refs 6 to 10
    for i in range(1, 11):
        stored_once(server, f"IMP-{i:04d}")
    assert "5 created, 0 updated, 5 unchanged, 0 rejected, 0 failed" in capsys.readouterr().err
    assert checkpoint_states(checkpoint) == {f"IMP-{i:04d}": "done" for i in range(1, 11)}
    assert checkpoint_ids(checkpoint)[4:5] + checkpoint_ids(checkpoint)[3:4] == [ids[4], ids[3]]


async def test_import_rerun_after_a_checkpoint_write_fails_mid_import_duplicates_nothing(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await start(latency={"create": 0.02})
    use(server, monkeypatch)
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 21)])
    original = SqliteCheckpoint.mark_done
    calls = Counter[str]()

    async def disk_fills_up(
        self: SqliteCheckpoint, ref: str, customer_id: str | None, fingerprint: str | None = None
    ) -> None:
        calls["done"] += 1
        if calls["done"] == 6:
            raise CheckpointError("database or disk is full", store=self.path)
        await original(self, ref, customer_id, fingerprint)

    monkeypatch.setattr(SqliteCheckpoint, "mark_done", disk_fills_up)
    assert await run("customers", "import", str(source), "--concurrency", "4") == 1
    assert "disk is full" in capsys.readouterr().err
    checkpoint = tmp_path / "customers.jsonl.checkpoint.sqlite"
    assert "intended" in checkpoint_states(checkpoint).values()
    for _ in range(500):  # let the creates the crashed run left in flight land
        if server.stats.in_flight == 0:
            break
        await asyncio.sleep(0.01)

    monkeypatch.setattr(SqliteCheckpoint, "mark_done", original)
    assert await run("customers", "import", str(source), "--concurrency", "4", "--no-scan") == 0

    for i in range(1, 21):
        stored_once(server, f"IMP-{i:04d}")
    assert server.stats.created == 20


async def test_import_rejects_a_row_without_unique_ref_no_unsent(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1, ref=False), wire_row(2)])

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / "customers.jsonl.rejects.jsonl")
    assert (reject["line"], reject["outcome"]) == (1, "rejected")
    assert "uniqueRefNo" in reject["reasons"][0]
    assert [c["uniqueRefNo"] for c in server.created_customers] == ["IMP-0002"]


async def test_import_rerun_sends_again_a_row_enkash_refused(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in (1, 2)])
    server.inject(Fault.status(400, error_type="VALIDATION_ERROR"), route="create", times=1)
    assert await cli("customers", "import", str(source), "--concurrency", "1") == 1
    assert [c["uniqueRefNo"] for c in server.created_customers] == ["IMP-0002"]

    assert await cli("customers", "import", str(source)) == 0

    assert sorted(c["uniqueRefNo"] for c in server.created_customers) == ["IMP-0001", "IMP-0002"]
    assert (
        "1 created, 0 updated, 1 unchanged, 0 rejected, 0 failed"
        in capsys.readouterr().err.splitlines()[-1]
    )


async def test_import_a_ref_repeated_with_other_data_is_rejected_naming_both_lines(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = wire_row(1)
    edited["legalName"] = "Row 1 Traders (edited) Pvt Ltd"
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), wire_row(2), edited])

    assert await cli("customers", "import", str(source), "--concurrency", "8") == 1

    assert stored_once(server, "IMP-0001")["legalName"] == "Row 1 Traders Pvt Ltd"
    assert server.stats.created == 2
    assert "2 created, 0 updated, 0 unchanged, 1 rejected" in capsys.readouterr().err
    (reject,) = read_jsonl(tmp_path / "customers.jsonl.rejects.jsonl")
    assert reject["line"] == 3
    assert "line 1" in reject["reasons"][0] and "line 3" in reject["reasons"][0]


async def test_import_a_ref_repeated_with_the_same_data_is_sent_once(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), wire_row(2), wire_row(1)])

    assert await cli("customers", "import", str(source), "--concurrency", "8") == 0

    assert server.stats.created == 2
    assert "2 created, 0 updated, 1 unchanged, 0 rejected" in capsys.readouterr().err


async def test_import_rerun_replaces_the_rejects_file_and_removes_it_once_clean(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    bad = wire_row(2)
    bad["customerKeyContacts"][0]["mobile"] = "12"
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), bad])
    rejects = tmp_path / "customers.jsonl.rejects.jsonl"

    assert await cli("customers", "import", str(source)) == 1
    assert await cli("customers", "import", str(source)) == 1
    assert [r["line"] for r in read_jsonl(rejects)] == [2]

    write_jsonl(source, [wire_row(1), wire_row(2)])
    assert await cli("customers", "import", str(source)) == 0
    assert not rejects.exists()
    assert server.stats.created == 2


async def test_import_writes_rejects_and_checkpoint_where_told(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    bad = wire_row(2)
    del bad["customerKeyContacts"]
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), bad])
    rejects, checkpoint = tmp_path / "refused.jsonl", tmp_path / "progress.sqlite"

    assert (
        await cli(
            "customers",
            "import",
            str(source),
            "--rejects",
            str(rejects),
            "--checkpoint",
            str(checkpoint),
        )
        == 1
    )

    assert [r["line"] for r in read_jsonl(rejects)] == [2]
    assert checkpoint_states(checkpoint) == {"IMP-0001": "done"}
    assert [n for n in listing(tmp_path) if "-" not in n] == [
        "customers.jsonl",
        "progress.sqlite",
        "refused.jsonl",
    ]


async def test_import_dry_run_creates_nothing_and_counts_what_it_would_do(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_directly(server, [wire_row(1)])
    bad = wire_row(4)
    del bad["legalName"]
    rows = [wire_row(1), wire_row(2), wire_row(3), bad, wire_row(2)]
    source = write_jsonl(tmp_path / "customers.jsonl", rows)
    before = server.stats.created

    assert await cli("customers", "import", str(source), "--dry-run") == 1

    assert server.stats.created == before
    assert server.stats.requests["create"] == 1  # create_directly's only
    err = capsys.readouterr().err
    assert "2 would be created, 0 would be updated, 2 unchanged, 1 rejected" in err
    assert not (tmp_path / "customers.jsonl.checkpoint.sqlite").exists()
