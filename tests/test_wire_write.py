"""The generated model writers write exactly what the cattrs converter writes: wire names,
JSON values, optional fields left out, UNSET left out and None sent as null."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from enkash_async._wire import camel_case
from enkash_async._wire._write import _converter, to_wire
from enkash_async.cli._commands import synthetic_creates
from enkash_async.models import (
    CustomerCreate,
    CustomerLevel,
    CustomerSearch,
    CustomerStatus,
    CustomerUpdate,
    KeyContactCreate,
    ReminderCreate,
)


def test_every_synthetic_create_is_written_as_the_converter_writes_it() -> None:
    customers = list(synthetic_creates(500, seed=3))
    assert [to_wire(c) for c in customers] == [_converter.unstructure(c) for c in customers]


def test_a_create_with_only_required_fields_leaves_every_optional_field_out() -> None:
    contact = KeyContactCreate(name="Asha", legal_name="Asha Rao", mobile="9876543210")
    customer = CustomerCreate(legal_name="Rao Traders", customer_key_contacts=(contact,))
    assert to_wire(customer) == _converter.unstructure(customer)
    assert set(to_wire(customer)) == {"legalName", "customerKeyContacts"}


@pytest.mark.parametrize(
    "changes",
    [
        {"legal_name": "New Name"},
        {"address": None},
        {"branch_codes": ("B1", "B2")},
        {"branch_codes": None},
        {"customer_reminders": None},
        {
            "customer_reminders": (
                ReminderCreate(
                    reminder_type="RECURRING", due_date_difference=3, reminder_time=dt.time(10, 30)
                ),
            )
        },
        {
            "customer_key_contacts": (
                KeyContactCreate(name="Asha", legal_name="Asha Rao", mobile="9876543210"),
            )
        },
    ],
    ids=lambda changes: ",".join(changes),
)
def test_an_update_is_written_as_the_converter_writes_it(changes: dict[str, Any]) -> None:
    update = CustomerUpdate(**changes)
    assert to_wire(update) == _converter.unstructure(update)
    assert set(to_wire(update)) == {camel_case(name) for name in update.changed_fields()}


def test_a_search_with_every_kind_of_field_is_written_as_the_converter_writes_it() -> None:
    search = CustomerSearch(
        balance_amount=Decimal("10.50"),
        created_on_from=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        customer_ids=("KC0000000000000A",),
        customer_status=CustomerStatus.ACTIVE,
        dso_from=1,
        level=CustomerLevel.LEVEL_1,
        select_all=True,
        unique_ref_no="ERP-1",
    )
    assert to_wire(search) == _converter.unstructure(search)
