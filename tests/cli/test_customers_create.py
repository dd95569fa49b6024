"""``enkash-async customers create``: one customer from a JSON file or stdin."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from _cli import (
    Run,
    no_traceback,
    stored_once,
    wire_row,
)

from enkash_async.cli import main
from enkash_async.testing import FakeEnkash, Fault


async def test_create_from_a_file_prints_the_created_customer_as_json(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customer.json"
    source.write_text(json.dumps(wire_row(1)), encoding="utf-8")

    assert await cli("customers", "create", "--json", str(source)) == 0

    printed = json.loads(capsys.readouterr().out)
    stored = stored_once(server, "IMP-0001")
    assert printed["customerId"] == stored["customerId"]
    assert printed["legalName"] == stored["legalName"] == "Row 1 Traders Pvt Ltd"
    assert [c["mobile"] for c in printed["customerKeyContacts"]] == ["9800000001"]


def test_create_reads_the_customer_from_stdin_with_a_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(wire_row(2))))

    assert main(["customers", "create", "--fake", "--json", "-"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["uniqueRefNo"] == "IMP-0002"
    assert printed["customerId"]
    assert [c["mobile"] for c in printed["customerKeyContacts"]] == ["9800000002", "9700000002"]


async def test_create_with_invalid_fields_names_each_field_and_sends_nothing(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = wire_row(3)
    bad["customerKeyContacts"][0]["mobile"] = "12345"
    bad["pinCode"] = "12"
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(bad), encoding="utf-8")

    assert await cli("customers", "create", "--json", str(source)) == 2

    out, err = capsys.readouterr()
    # In the caller's (wire) names, one problem per line.
    assert "\n  customerKeyContacts[0].mobile: must be 10 digits" in err
    assert "\n  pinCode: must be 6 digits" in err
    assert out == ""
    assert no_traceback(err)
    assert server.stats.requests["create"] == 0


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b'{"legalName": ', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"legalName": "Caf\xe9"}', "not UTF-8"),
    ],
    ids=["truncated-json", "not-an-object", "not-utf8"],
)
def test_create_with_an_unreadable_file_says_why_and_exits_2(
    content: bytes, complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customer.json"
    source.write_bytes(content)

    assert main(["customers", "create", "--fake", "--json", str(source)]) == 2

    err = capsys.readouterr().err
    assert complaint in err
    assert no_traceback(err)
    assert "row " not in err  # a single JSON document has no rows


def test_create_with_a_missing_file_names_it_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"

    assert main(["customers", "create", "--fake", "--json", str(missing)]) == 2

    err = capsys.readouterr().err
    assert str(missing) in err
    assert no_traceback(err)


async def test_create_refused_by_enkash_shows_its_message_and_exits_1(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.inject(
        Fault.status(400, error_type="VALIDATION_ERROR", message="PAN already registered"),
        route="create",
    )
    source = tmp_path / "customer.json"
    source.write_text(json.dumps(wire_row(4)), encoding="utf-8")

    assert await cli("customers", "create", "--json", str(source)) == 1

    out, err = capsys.readouterr()
    assert "PAN already registered" in err
    assert out == ""
    assert no_traceback(err)
    assert server.find_by_unique_ref("IMP-0004") == []


async def test_create_run_twice_with_the_same_ref_stores_the_customer_once(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customer.json"
    source.write_text(json.dumps(wire_row(5)), encoding="utf-8")

    assert await cli("customers", "create", "--json", str(source)) == 0
    first = json.loads(capsys.readouterr().out)
    assert await cli("customers", "create", "--json", str(source)) == 0
    out, err = capsys.readouterr()

    assert (
        json.loads(out)["customerId"]
        == first["customerId"]
        == stored_once(server, "IMP-0005")["customerId"]
    )
    assert "unchanged" in err
    assert server.stats.requests["create"] == 1


async def test_create_of_a_known_ref_with_new_data_updates_only_what_differs(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customer.json"
    row = wire_row(6)
    source.write_text(json.dumps(row), encoding="utf-8")
    assert await cli("customers", "create", "--json", str(source)) == 0
    capsys.readouterr()
    row["address"] = "12 MG Road, Bengaluru"
    source.write_text(json.dumps(row), encoding="utf-8")

    assert await cli("customers", "create", "--json", str(source)) == 0

    out, err = capsys.readouterr()
    assert json.loads(out)["address"] == "12 MG Road, Bengaluru"
    assert stored_once(server, "IMP-0006")["address"] == "12 MG Road, Bengaluru"
    assert "updated" in err and "address" in err
    assert server.stats.requests["update"] == 1
