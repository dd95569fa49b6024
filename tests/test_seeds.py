"""The seed pages (EnKash's own API docs) as the specification: their example payloads
decode, their field lists are the models' wire names, their enums are the models' enums.

Everything comes from tests/fixtures/seeds/, which tests/fixtures/extract_seeds.py parses
from the captured pages; nothing is copied from them by hand.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from _customer_wire import customer_from_wire, page_from_wire
from _seeds import fixture, rules

from enkash_async._validation import is_valid_gstin
from enkash_async._wire import wire_name
from enkash_async.errors import ValidationError
from enkash_async.models import (
    Customer,
    CustomerCreate,
    CustomerLevel,
    CustomerSearch,
    CustomerSource,
    CustomerStatus,
    ErrorType,
    KeyContact,
    KeyContactCreate,
    Reminder,
    ReminderCreate,
    ReminderType,
    SortDirection,
)

REQUEST_EXAMPLE = fixture("create_customer.request.json")
RESPONSE_EXAMPLE = fixture("create_customer.reply.json")
SEARCH_EXAMPLE = fixture("search_customer.reply.json")
RULES = rules()
ROOT = Path(__file__).resolve().parents[1]
PATTERNS = {name: re.compile(rx, re.ASCII) for name, rx in RULES["patterns"].items()}


def wire_names(model: type[Any]) -> set[str]:
    return {wire_name(a) for a in attrs.fields(model)}


# --------------------------------------------------------------------------- the fixtures


def _seed_pages() -> Path | None:
    """``$ENKASH_SEEDS``, else ``../shared/seeds`` beside the repository, if present."""
    for candidate in (os.environ.get("ENKASH_SEEDS"), ROOT.parent / "shared" / "seeds"):
        if candidate and Path(candidate, "README.md").is_file():
            return Path(candidate)
    return None


def test_the_fixtures_are_what_the_seed_pages_say() -> None:
    pages = _seed_pages()
    if pages is None:
        pytest.skip("the seed pages are not here (set ENKASH_SEEDS to check the fixtures)")
    script = ROOT / "tests" / "fixtures" / "extract_seeds.py"
    checked = subprocess.run(
        [sys.executable, str(script), str(pages), "--check"], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


# --------------------------------------------------------------------------- wire names


@pytest.mark.parametrize(
    ("model", "documented"),
    [
        (CustomerCreate, lambda: REQUEST_EXAMPLE),
        (KeyContactCreate, lambda: REQUEST_EXAMPLE["customerKeyContacts"][0]),
        (ReminderCreate, lambda: REQUEST_EXAMPLE["customerReminders"][0]),
        (Customer, lambda: RESPONSE_EXAMPLE["payload"]),
        (KeyContact, lambda: RESPONSE_EXAMPLE["payload"]["customerKeyContacts"][0]),
        (Reminder, lambda: RESPONSE_EXAMPLE["payload"]["customerReminders"][0]),
        (Customer, lambda: SEARCH_EXAMPLE["payload"]["data"][0]),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_model_wire_names_are_the_keys_of_the_seed_example(
    model: type[Any], documented: Any
) -> None:
    assert wire_names(model) == set(documented())


def test_create_wire_names_are_the_fields_the_create_schema_lists() -> None:
    listed = set(RULES["body_params"]["createCustomer"])
    nested = wire_names(CustomerCreate) | wire_names(KeyContactCreate) | wire_names(ReminderCreate)
    assert nested == listed


def test_search_wire_names_are_the_body_params_of_search_customer() -> None:
    assert wire_names(CustomerSearch) == set(RULES["body_params"]["searchCustomer"])


@pytest.mark.parametrize(
    ("schema", "model"),
    [
        ("CustomerKeyContactCreateDTO", KeyContactCreate),
        ("CustomerReminderCreateDTO", ReminderCreate),
        ("CustomerKeyContactResponse", KeyContact),
        ("CustomerReminderConfigResponse", Reminder),
        ("CustomerResponse", Customer),
    ],
)
def test_models_have_as_many_fields_as_the_seed_schema_counts(schema: str, model: Any) -> None:
    assert RULES["schema_field_counts"][schema] == len(attrs.fields(model))


# --------------------------------------------------------------------------- enums


@pytest.mark.parametrize(
    ("field", "enum_type", "page"),
    [
        ("reminderType", ReminderType, "createCustomer"),
        ("source", CustomerSource, "createCustomer"),
        ("errorType", ErrorType, "createCustomer"),
        ("direction", SortDirection, "searchCustomer"),
        ("customerStatus", CustomerStatus, "searchCustomer"),
        ("level", CustomerLevel, "searchCustomer"),
        ("errorType", ErrorType, "searchCustomer"),
    ],
)
def test_enum_values_are_the_documented_allowed_values(
    field: str, enum_type: Any, page: str
) -> None:
    documented = RULES["allowed_values"][page][field]
    assert [member.value for member in enum_type] == documented


# --------------------------------------------------------------------------- replies


def test_the_customer_response_example_decodes() -> None:
    customer = customer_from_wire(RESPONSE_EXAMPLE["payload"])
    assert customer.created_on == dt.datetime(2019, 8, 24, 14, 15, 22, tzinfo=dt.timezone.utc)
    assert customer.net_amount == Decimal(0) and customer.id == 0 and customer.active is True
    assert customer.branch_codes == ["string"] and customer.warnings == ["string"]
    [contact] = customer.customer_key_contacts
    assert contact.deleted is None  # "string" is neither true nor false
    assert contact.mail_enabled is True and contact.name == "string"
    [reminder] = customer.customer_reminders
    assert reminder.reminder_type is ReminderType.ONCE
    assert reminder.reminder_time == "HH:mm"  # the placeholder is kept, not a time


def test_the_customer_response_example_encodes_back_to_itself_but_the_unreadable_flag() -> None:
    payload = RESPONSE_EXAMPLE["payload"]
    expected = copy.deepcopy(payload)
    del expected["customerKeyContacts"][0]["deleted"]  # "string" reads as unknown
    assert customer_from_wire(payload).to_dict() == expected


def test_the_search_response_example_decodes_to_a_page_of_customers() -> None:
    customers, count = page_from_wire(SEARCH_EXAMPLE["payload"])
    assert count == SEARCH_EXAMPLE["payload"]["recordsCount"]
    assert customers == [customer_from_wire(d) for d in SEARCH_EXAMPLE["payload"]["data"]]
    assert customers[0] == customer_from_wire(RESPONSE_EXAMPLE["payload"])


def test_the_example_error_type_is_a_documented_error_type() -> None:
    assert ErrorType(RESPONSE_EXAMPLE["errorResponse"]["errorType"]) in ErrorType


# --------------------------------------------------------------------------- the request example


def _python_path(wire_path: tuple[Any, ...]) -> str:
    path = ""
    for part in wire_path:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = next(
                a.name
                for model in (CustomerCreate, KeyContactCreate, ReminderCreate)
                for a in attrs.fields(model)
                if wire_name(a) == part
            )
            path += f".{name}" if path else name
    return path


def _walk(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _walk(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _walk(item, (*path, index))]
    return [(path, value)]


def _breaks_its_format(path: tuple[Any, ...], value: Any) -> bool:
    """Whether the seed's documentation rules ``value`` out for the field at ``path``."""
    field = path[-1]
    if field == "panOrGstin":  # the seed's alternation, read as "empty, PAN or GSTIN"
        gstin_or_pan = PATTERNS[field].fullmatch(value)
        return not gstin_or_pan or (len(value) == 15 and not is_valid_gstin(value))
    if field in PATTERNS:
        return not PATTERNS[field].fullmatch(value)
    if field == "reminderTime":  # LocalTime, documented as "HH:mm"
        return not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value)
    return False


def test_the_request_example_reports_exactly_the_placeholders_breaking_a_documented_format() -> (
    None
):
    expected = {
        _python_path(path)
        for path, value in _walk(REQUEST_EXAMPLE)
        if isinstance(value, str) and _breaks_its_format(path, value)
    }
    assert "customer_key_contacts[0].mobile" in expected and "pin_code" in expected
    with pytest.raises(ValidationError) as info:
        CustomerCreate.from_dict(REQUEST_EXAMPLE)
    assert sorted(info.value.fields) == sorted(expected)


REPLACEMENTS = {
    "accountNumber": "50100123456789",
    "companyId": "CEK0000042",
    "contactNumber": "+91 9876543210",
    "email": "accounts@acme.example",
    "mobile": "9876543210",
    "ifsc": "HDFC0001234",
    "panOrGstin": "27AAPFU0939F1ZV",
    "pinCode": "560001",
    "reminderTime": "09:30",
}


def _valid_request_example() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(REQUEST_EXAMPLE)
    for path, value in _walk(data):
        if isinstance(value, str) and _breaks_its_format(path, value):
            holder = data
            for part in path[:-1]:
                holder = holder[part]
            holder[path[-1]] = REPLACEMENTS[path[-1]]
    return data


def test_the_request_example_with_valid_values_decodes_and_encodes_to_the_same_json() -> None:
    data = _valid_request_example()
    built = CustomerCreate.from_dict(data)
    assert built.customer_key_contacts[0].mobile == "9876543210"
    assert built.source is CustomerSource.ENKASH
    assert json.loads(json.dumps(built.to_dict())) == data
    assert built.to_dict() == data
