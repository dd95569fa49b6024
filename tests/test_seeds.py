"""The seed pages (EnKash's own API docs) as the specification: their example payloads
decode, their field lists are the models' wire names, their enums are the models' enums.

Everything is parsed from the captured page text; nothing is copied from it.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
from decimal import Decimal
from typing import Any

import attrs
import pytest
from _seeds import seed_dir

from enkash_async._convert import customer_from_wire, page_from_wire, wire_name
from enkash_async._validation import is_valid_gstin
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

SEEDS = seed_dir()


def seed(prefix: str) -> str:
    assert SEEDS is not None
    return next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")


CREATE_REFERENCE, CREATE_PORTAL, SEARCH_REFERENCE = seed("000"), seed("001"), seed("002")


def json_examples(text: str) -> list[Any]:
    """Every JSON value that starts at the beginning of a line of ``text``."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"^[{\[]", text, re.MULTILINE):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        found.append(value)
    return found


def _only(examples: list[Any], has: str, lacks: str = "\0") -> Any:
    chosen = [e for e in examples if has in e and lacks not in e]
    assert chosen, f"no example with {has!r}"
    assert all(e == chosen[0] for e in chosen)
    return copy.deepcopy(chosen[0])


RESPONSE_EXAMPLE = _only(json_examples(CREATE_REFERENCE), "payload")
REQUEST_EXAMPLE = _only(json_examples(CREATE_PORTAL), "customerKeyContacts", lacks="payload")
SEARCH_EXAMPLE = _only(json_examples(SEARCH_REFERENCE), "payload")

_TYPE_LINE = re.compile(r"(string|boolean|number|object|integer|array)\b|enum<string>")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def documented_patterns(text: str) -> dict[str, re.Pattern[str]]:
    """Wire field -> its "Match pattern:" from a seed page, compiled as Java would use it."""
    lines = _lines(text)
    patterns = {}
    for index, line in enumerate(lines):
        if line == "Match pattern:":
            name = index - 1
            while lines[name + 1] != "string":
                name -= 1
            patterns[lines[name]] = re.compile(lines[index + 1], re.ASCII)
    return patterns


def allowed_values(text: str) -> dict[str, str]:
    """Wire field -> the captured (separator-less) text under its "Allowed values:"."""
    lines = _lines(text)
    found = {}
    for index, line in enumerate(lines):
        if line == "Allowed values:":
            name = index - 1
            while not lines[name + 1].startswith("enum<string>"):
                name -= 1
            found[lines[name]] = lines[index + 1]
    return found


def body_params(text: str) -> list[str]:
    """The field names listed under "Body Params" up to the first "Example"."""
    lines = _lines(text)
    start = lines.index("Body Params application/json") + 1
    end = lines.index("Example", start)
    section = lines[start:end]
    return [
        name
        for name, after in itertools.pairwise(section)
        if re.fullmatch(r"\w+", name) and _TYPE_LINE.match(after)
    ]


def readme_enums() -> dict[str, list[str]]:
    """The README's repair of lost separators: captured text -> the enum's values."""
    assert SEEDS is not None
    readme = (SEEDS / "README.md").read_text(encoding="utf-8")
    lists = re.findall(r"`[A-Z0-9_]+`(?:, `[A-Z0-9_]+`)+", readme)
    return {"".join(values): values for values in (re.findall(r"`(\w+)`", x) for x in lists)}


PATTERNS = documented_patterns(CREATE_PORTAL)


def wire_names(model: type[Any]) -> set[str]:
    return {wire_name(a.name) for a in attrs.fields(model)}


# --------------------------------------------------------------------------- the parsers


def test_both_create_pages_document_the_same_patterns() -> None:
    assert documented_patterns(CREATE_REFERENCE) == PATTERNS
    assert len(PATTERNS) == 8


def test_the_two_captures_of_the_request_example_agree() -> None:
    examples = [e for e in json_examples(CREATE_PORTAL) if "payload" not in e]
    assert len(examples) >= 1 and all(e == REQUEST_EXAMPLE for e in examples)


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
    listed = set(body_params(CREATE_REFERENCE))
    nested = wire_names(CustomerCreate) | wire_names(KeyContactCreate) | wire_names(ReminderCreate)
    assert nested == listed


def test_search_wire_names_are_the_body_params_of_search_customer() -> None:
    assert wire_names(CustomerSearch) == set(body_params(SEARCH_REFERENCE))


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
    counts = set(
        re.findall(rf"object \({schema}\) \{{(\d+)\}}", CREATE_REFERENCE + SEARCH_REFERENCE)
    )
    assert counts == {str(len(attrs.fields(model)))}


# --------------------------------------------------------------------------- enums


@pytest.mark.parametrize(
    ("field", "enum_type", "page"),
    [
        ("reminderType", ReminderType, "create"),
        ("source", CustomerSource, "create"),
        ("errorType", ErrorType, "create"),
        ("direction", SortDirection, "search"),
        ("customerStatus", CustomerStatus, "search"),
        ("level", CustomerLevel, "search"),
        ("errorType", ErrorType, "search"),
    ],
)
def test_enum_values_are_the_documented_allowed_values(
    field: str, enum_type: Any, page: str
) -> None:
    captured = allowed_values(CREATE_REFERENCE if page == "create" else SEARCH_REFERENCE)[field]
    assert [member.value for member in enum_type] == readme_enums()[captured]


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
                if wire_name(a.name) == part
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
