"""One CSV format: what ``customers search --format csv`` writes, ``customers import``
reads, and ``examples/customers.csv`` is written in."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from _cli import Start, run, stored_once, use, write_csv

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

    assert "20 created, 0 found, 0 rejected, 0 failed" in capsys.readouterr().err
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
