"""``enkash-async customers get|update|activate|deactivate|delete`` CUSTOMER_ID."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import Run, create_directly, no_traceback, wire_row

from enkash_async.testing import FakeEnkash, Fault


async def test_get_prints_the_customer_as_json(
    cli: Run, server: FakeEnkash, capsys: pytest.CaptureFixture[str]
) -> None:
    (customer_id,) = await create_directly(server, [wire_row(1)])

    assert await cli("customers", "get", customer_id) == 0

    printed = json.loads(capsys.readouterr().out)
    assert (printed["customerId"], printed["uniqueRefNo"]) == (customer_id, "IMP-0001")


async def test_get_of_an_unknown_id_says_so_and_exits_1(
    cli: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("customers", "get", "KC0000000000NONE") == 1

    err = capsys.readouterr().err
    assert "KC0000000000NONE" in err
    assert no_traceback(err)


async def test_a_malformed_id_is_a_usage_error_and_sends_nothing(
    cli: Run, server: FakeEnkash, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cli("customers", "delete", "kc123") == 2

    err = capsys.readouterr().err
    assert "CUSTOMER_ID" in err
    assert no_traceback(err)
    assert server.stats.requests["delete"] == 0


async def test_update_sends_the_given_fields_keeps_absent_ones_and_clears_nulls(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    row = {**wire_row(2), "address": "1 Old Road", "state": "Goa"}
    (customer_id,) = await create_directly(server, [row])
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"address": "2 New Road", "state": None}), encoding="utf-8")

    assert await cli("customers", "update", customer_id, "--json", str(changes)) == 0

    out, err = capsys.readouterr()
    (stored,) = server.find_by_unique_ref("IMP-0002")
    assert stored["address"] == "2 New Road"
    assert stored.get("state") is None
    assert stored["legalName"] == row["legalName"]
    assert json.loads(out)["address"] == "2 New Road"
    assert "address, state" in err


async def test_update_with_an_invalid_field_names_it_and_sends_nothing(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (customer_id,) = await create_directly(server, [wire_row(3)])
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"pinCode": "12"}), encoding="utf-8")

    assert await cli("customers", "update", customer_id, "--json", str(changes)) == 2

    err = capsys.readouterr().err
    assert "pinCode" in err
    assert no_traceback(err)
    assert server.stats.requests["update"] == 0


async def test_deactivate_then_activate_are_reflected_in_the_stored_customer(
    cli: Run, server: FakeEnkash
) -> None:
    (customer_id,) = await create_directly(server, [wire_row(4)])

    assert await cli("customers", "deactivate", customer_id) == 0
    assert server.find_by_unique_ref("IMP-0004")[0]["active"] is False
    assert await cli("customers", "activate", customer_id) == 0
    assert server.find_by_unique_ref("IMP-0004")[0]["active"] is True


async def test_delete_removes_the_customer_even_when_the_first_reply_is_lost(
    cli: Run, server: FakeEnkash, capsys: pytest.CaptureFixture[str]
) -> None:
    (customer_id,) = await create_directly(server, [wire_row(5)])
    server.inject(Fault.after_commit(status=502), route="delete", times=1)

    assert await cli("customers", "delete", customer_id) == 0

    assert server.find_by_unique_ref("IMP-0005") == []
    assert no_traceback(capsys.readouterr().err)
