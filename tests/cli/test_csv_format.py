"""One CSV format: what ``customers search --format csv`` writes, ``customers import``
reads, and ``examples/customers.csv`` is written in."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest
from _cli import Start, create_directly, run, stored_once, use, write_csv

from enkash_async.testing import FakeEnkash

EXAMPLE = Path(__file__).parents[2] / "examples" / "customers.csv"


def header_of(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as stream:
        return next(csv.reader(stream))


def refs_of(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as stream:
        return [row["uniqueRefNo"] for row in csv.DictReader(stream)]


@pytest.fixture
async def empty(start: Start, monkeypatch: pytest.MonkeyPatch) -> FakeEnkash:
    server = await start(customers=0)
    use(server, monkeypatch)
    return server


async def test_customers_import_of_the_example_csv_creates_every_row(
    empty: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = Path(shutil.copy(EXAMPLE, tmp_path / "customers.csv"))
    refs = refs_of(source)
    assert len(refs) == 20

    assert await run("customers", "import", str(source)) == 0

    assert "20 created, 0 updated, 0 unchanged, 0 rejected, 0 failed" in capsys.readouterr().err
    for ref in refs:
        stored_once(empty, ref)
    assert not (tmp_path / "customers.csv.rejects.jsonl").exists()


async def test_the_example_csv_has_the_columns_an_export_of_its_customers_has(
    empty: FakeEnkash, tmp_path: Path
) -> None:
    source = Path(shutil.copy(EXAMPLE, tmp_path / "customers.csv"))
    assert await run("customers", "import", str(source)) == 0
    exported = tmp_path / "export.csv"

    assert await run("customers", "search", "--format", "csv", "--output", str(exported)) == 0

    # A reply names a key contact's legal name customerName; a create, and the file, legalName.
    as_exported = [c.replace(".legalName", ".customerName") for c in header_of(source)]
    assert set(as_exported) <= set(header_of(exported))


async def test_an_import_reads_python_names_in_the_header_as_the_wire_names_they_stand_for(
    empty: FakeEnkash, tmp_path: Path
) -> None:
    row = {
        "unique_ref_no": "SNAKE-1",
        "legal_name": "Snake Case Traders Pvt Ltd",
        "customer_key_contacts.0.name": "Asha",
        "customer_key_contacts.0.legal_name": "Asha Rao",
        "customer_key_contacts.0.mobile": "9800000001",
        "customer_key_contacts.0.deleted": "false",
        "customer_key_contacts.0.mail_enabled": "true",
    }
    source = write_csv(tmp_path / "snake.csv", [row])

    assert await run("customers", "import", str(source)) == 0

    stored = stored_once(empty, "SNAKE-1")
    assert stored["legalName"] == "Snake Case Traders Pvt Ltd"
    (contact,) = stored["customerKeyContacts"]
    assert (contact["customerName"], contact["mobile"]) == ("Asha Rao", "9800000001")
    assert contact["mail_enabled"] is True


# --------------------------------------------------------------------------- CSV injection

# Cells a spreadsheet would run as a formula (OWASP's list: = + - @ TAB CR at the start).
FORMULAS = ["=1+1", "+SUM(A1:A2)", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "\r=1"]


def hostile_row(i: int, text: str) -> dict[str, Any]:
    return {
        "uniqueRefNo": f"{text}-{i}",
        "legalName": text,
        "address": text,
        "customerKeyContacts": [
            {"name": text, "legalName": text, "mobile": f"98{i:08d}", "deleted": False}
        ],
    }


async def test_an_export_starts_every_cell_a_spreadsheet_would_run_with_a_quote(
    empty: FakeEnkash, tmp_path: Path
) -> None:
    await create_directly(empty, [hostile_row(i, text) for i, text in enumerate(FORMULAS)])
    exported = tmp_path / "export.csv"

    assert await run("customers", "search", "--format", "csv", "--output", str(exported)) == 0

    with exported.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert sorted(row["legalName"] for row in rows) == sorted(f"'{text}" for text in FORMULAS)
    for row in rows:
        for column in ("uniqueRefNo", "address", "customerKeyContacts.0.name"):
            assert row[column].startswith("'"), (column, row[column])


async def test_an_export_with_formula_cells_imports_back_to_the_same_values(
    start: Start, empty: FakeEnkash, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [*FORMULAS, "'=quoted", "-5", "+919800000001", "'plain"]
    await create_directly(empty, [hostile_row(i, text) for i, text in enumerate(texts)])
    exported = tmp_path / "export.csv"
    assert await run("customers", "search", "--format", "csv", "--output", str(exported)) == 0
    again = await start(customers=0)
    use(again, monkeypatch)

    assert await run("customers", "import", str(exported)) == 0

    for i, text in enumerate(texts):
        stored = stored_once(again, f"{text}-{i}")
        assert (stored["legalName"], stored["address"]) == (text, text)
        assert stored["customerKeyContacts"][0]["name"] == text


async def test_an_export_leaves_numbers_and_other_text_as_they_are(
    empty: FakeEnkash, tmp_path: Path
) -> None:
    texts = ["-5", "+919800000001", "-1.25", "plain", "'quoted"]
    await create_directly(empty, [hostile_row(i, text) for i, text in enumerate(texts)])
    exported = tmp_path / "export.csv"

    assert await run("customers", "search", "--format", "csv", "--output", str(exported)) == 0

    with exported.open(encoding="utf-8", newline="") as stream:
        names = sorted(row["legalName"] for row in csv.DictReader(stream))
    assert names == sorted(texts)


# --------------------------------------------------------------------------- ambiguous headers


@pytest.mark.parametrize(
    ("columns", "named"),
    [
        (["uniqueRefNo", "unique_ref_no"], ["uniqueRefNo", "unique_ref_no"]),
        (["legalName", "legalName"], ["legalName"]),
        (
            ["customerKeyContacts.0.mobile", "customer_key_contacts.0.mobile"],
            ["customerKeyContacts.0.mobile", "customer_key_contacts.0.mobile"],
        ),
        (
            ["customerKeyContacts.0.mobile", "customerKeyContacts.00.mobile"],
            ["customerKeyContacts.0.mobile", "customerKeyContacts.00.mobile"],
        ),
    ],
)
async def test_an_import_refuses_a_header_naming_one_field_twice_and_creates_nothing(
    columns: list[str],
    named: list[str],
    empty: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "ambiguous.csv"
    cells = ["legalName", "customerKeyContacts.0.name", "customerKeyContacts.0.legalName"]
    values = ["Twice Pvt Ltd", "Asha", "Asha Rao"]
    header = [*cells, "customerKeyContacts.0.deleted", *columns]
    row = [*values, "false", *(["9800000001"] * len(columns))]
    source.write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")

    assert await run("customers", "import", str(source)) == 2

    err = capsys.readouterr().err
    assert "Traceback" not in err
    first_line = next(line for line in err.splitlines() if "header" in line)
    assert all(f"'{name}'" in first_line for name in named), err
    assert empty.stats.requests["create"] == 0
