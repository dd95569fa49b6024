"""Customer records shaped like the seed's own examples, for the decoder's tests.

The ``searchCustomer`` and ``createCustomer`` 200 examples (``tests/fixtures/seeds/``),
ids and names varied, and the same records with each shape the liberal contract accepts
(``QUIRKS``). Bodies are built with a success envelope: the examples' ``errorResponse``
holds placeholders (``errorMessage: "string"``), which the client reads as a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from _seeds import fixture


def example_records() -> list[dict[str, Any]]:
    """The customer of each 200 example: the search page's record, the create's payload."""
    search = fixture("search_customer.reply.json")["payload"]["data"]
    return [*search, fixture("create_customer.reply.json")["payload"]]


def seed_record(number: int) -> dict[str, Any]:
    """An example record (alternating the two) with its ids and names made its own."""
    examples = example_records()
    record = examples[number % len(examples)]
    customer_id = f"KC{number:014d}"
    record.update(
        customerId=customer_id,
        id=number + 1,
        legalName=f"Seed Customer {number} Private Limited",
        uniqueRefNo=f"ERP-{number:07d}",
    )
    for contact in record["customerKeyContacts"]:
        contact.update(
            customerId=customer_id,
            customerName=record["legalName"],
            keyContactPersonId=f"KCP{number:011d}",
            name=f"Contact {number}",
        )
    for reminder in record["customerReminders"]:
        reminder.update(customerId=customer_id, customerReminderId=f"CRM{number:011d}")
    return record


def _contacts(**values: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        for contact in record["customerKeyContacts"]:
            contact.update(values)

    return change


def _reminders(**values: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        for reminder in record["customerReminders"]:
            reminder.update(values)

    return change


def _customer(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda record: record.update(values)


def _all_null(record: dict[str, Any]) -> None:
    for key in record:
        if key not in ("customerId", "id", "customerKeyContacts", "customerReminders"):
            record[key] = None
    record["customerKeyContacts"][0].update(dict.fromkeys(record["customerKeyContacts"][0]))
    record["customerReminders"][0].update(dict.fromkeys(record["customerReminders"][0]))


def _null_items(record: dict[str, Any]) -> None:
    record.update(branchCodes=[None, "BR001"], warnings=[None], customerLogo=None)


def _null_lists(record: dict[str, Any]) -> None:
    record.update(branchCodes=None, warnings=None, customerKeyContacts=None, customerReminders=None)


#: Each shape the liberal contract accepts, applied to a record in place.
QUIRKS: dict[str, Callable[[dict[str, Any]], None]] = {
    # A key contact's ``deleted``, which the response schema types as a string.
    "deleted 'false'": _contacts(deleted="false"),
    "deleted 'true'": _contacts(deleted="true"),
    # ``reminderTime``: a Java LocalTime, in each form Jackson may write one.
    "reminderTime 'HH:mm' placeholder": _reminders(reminderTime="HH:mm"),
    "reminderTime '10:30'": _reminders(reminderTime="10:30"),
    "reminderTime '10:30:00'": _reminders(reminderTime="10:30:00"),
    "reminderTime '10:30:00.123'": _reminders(reminderTime="10:30:00.123"),
    "reminderTime [10, 30]": _reminders(reminderTime=[10, 30]),
    "reminderTime [10, 30, 0]": _reminders(reminderTime=[10, 30, 0]),
    # Numbers where strings belong (Jackson writes a Long id or a numeric column as one).
    "mobile as a number": _contacts(mobile=9876543210),
    "pinCode and accountNumber as numbers": _customer(pinCode=560001, accountNumber=12345678901),
    "stage as a number": _reminders(stage=1),
    # Nulls: every field, items of lists of strings, whole lists.
    "every field null": _all_null,
    "null items in lists of strings": _null_items,
    "null lists": _null_lists,
    # Enum values the client does not know yet, as text and as a number.
    "unknown reminderType": _reminders(reminderType="WEEKLY"),
    "reminderType as a number": _reminders(reminderType=2),
}


def quirky_record(number: int, quirk: str) -> dict[str, Any]:
    """:func:`seed_record` with one quirk applied."""
    record = seed_record(number)
    QUIRKS[quirk](record)
    return record


def search_body(records: list[dict[str, Any]]) -> bytes:
    """A successful search reply holding ``records``."""
    return json.dumps(
        {
            "errorResponse": None,
            "payload": {"data": records, "recordsCount": len(records)},
            "response_code": 0,
            "response_message": "OK",
        }
    ).encode()
