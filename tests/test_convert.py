"""The wire format: EnKash's JSON names, liberal reading of replies, strict building of
requests from wire JSON with every problem reported by its Python path."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import traceback
from decimal import Decimal
from typing import Any

import attrs
import msgspec
import pytest
from _customer_wire import customer_from_wire, page_from_wire

from enkash_async._wire import (
    page_records_from_wire,
    read_record_reply,
    read_search_reply,
    record_key,
    record_reader,
    wire_name,
)
from enkash_async._wire._stream import _struct_and_builder
from enkash_async.errors import EnkashError, UnexpectedResponseError, ValidationError
from enkash_async.models import (
    Customer,
    CustomerCreate,
    CustomerSearch,
    KeyContact,
    KeyContactCreate,
    Reminder,
    ReminderCreate,
    ReminderType,
)

UTC = dt.timezone.utc
ALL_MODELS = (
    Customer,
    KeyContact,
    Reminder,
    CustomerCreate,
    KeyContactCreate,
    ReminderCreate,
    CustomerSearch,
)
SNAKE_ON_WIRE = {"mail_enabled", "sms_enabled", "whatsapp_enabled"}

CONTACT = {"name": "Asha", "legalName": "Asha Rao", "mobile": "9876543210", "deleted": False}


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def sample(model: type[Any]) -> Any:
    """An instance of ``model`` with every field set, so every wire key is written."""
    values: dict[str, Any] = {
        "deleted": True,
        "mail_enabled": True,
        "sms_enabled": False,
        "whatsapp_enabled": True,
        "active": True,
        "external_source": False,
        "select_all": True,
        "id": 1,
        "dso_median": 2,
        "due_date_difference": 3,
        "reminder_interval": 4,
        "dso_from": 5,
        "dso_to": 6,
        "net_amount": Decimal("7.5"),
        "balance_amount": 8,
        "reminder_time": dt.time(9, 30),
        "reminder_type": ReminderType.ONCE,
        "source": "ENKASH",
        "customer_status": "ALL",
        "level": "LEVEL_1",
        "created_on": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "modified_on": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "created_on_from": dt.datetime(2024, 1, 2, tzinfo=UTC),
        "created_on_to": dt.datetime(2024, 2, 2, tzinfo=UTC),
        "branch_codes": ["B1"],
        "warnings": ["w"],
        "customer_ids": ["C1"],
        "mobile": "9876543210",
        "contact_number": "9876543210",
        "email": "a@b.co",
        "account_number": "123456789",
        "company_id": "CEK1234567",
        "ifsc": "HDFC0001234",
        "pan_or_gstin": "AAPFU0939F",
        "pin_code": "560001",
    }
    if model is Customer:
        values.update(
            customer_key_contacts=[sample(KeyContact)], customer_reminders=[sample(Reminder)]
        )
    if model is CustomerCreate:
        values.update(
            customer_key_contacts=[sample(KeyContactCreate)],
            customer_reminders=[sample(ReminderCreate)],
        )
    kwargs = {a.name: values.get(a.name, f"{a.name}-value") for a in attrs.fields(model)}
    return model(**kwargs)


# --------------------------------------------------------------------------- wire names


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_wire_names_are_camel_case_except_the_three_snake_case_flags(model: type[Any]) -> None:
    for a in attrs.fields(model):
        expected = a.name if a.name in SNAKE_ON_WIRE else camel(a.name)
        assert wire_name(a) == expected


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m.__name__)
def test_to_dict_writes_every_field_under_its_wire_name(model: type[Any]) -> None:
    wire = sample(model).to_dict()
    assert set(wire) == {wire_name(a) for a in attrs.fields(model)}


@pytest.mark.parametrize("model", [Customer, KeyContact, Reminder], ids=lambda m: m.__name__)
def test_reply_decoding_reads_every_field_from_its_wire_name(model: type[Any]) -> None:
    record = sample(model)
    wire = record.to_dict()
    if model is Customer:
        assert customer_from_wire(wire) == record
    else:
        outer = "customerKeyContacts" if model is KeyContact else "customerReminders"
        assert getattr(customer_from_wire({outer: [wire]}), _python(outer)) == [record]


@pytest.mark.parametrize(
    "model",
    [CustomerCreate, KeyContactCreate, ReminderCreate, CustomerSearch],
    ids=lambda m: m.__name__,
)
def test_from_dict_reads_every_field_from_its_wire_name(model: type[Any]) -> None:
    request = sample(model)
    assert model.from_dict(request.to_dict()) == request


@pytest.mark.parametrize(
    "model",
    [CustomerCreate, KeyContactCreate, ReminderCreate, CustomerSearch],
    ids=lambda m: m.__name__,
)
def test_from_dict_rejects_python_names_on_the_wire(model: type[Any]) -> None:
    request = sample(model)
    python_named = {a.name: request.to_dict()[wire_name(a)] for a in attrs.fields(model)}
    renamed = {n for n in python_named if wire_name(attrs.fields_dict(model)[n]) != n}
    with pytest.raises(ValidationError) as info:
        model.from_dict(python_named)
    assert renamed <= set(info.value.fields)


def _python(wire: str) -> str:
    return next(a.name for a in attrs.fields(Customer) if wire_name(a) == wire)


# --------------------------------------------------------------------------- liberal reading


def test_unknown_fields_in_a_reply_are_ignored() -> None:
    record = customer_from_wire(
        {"customerId": "C1", "brandNewField": {"x": [1]}, "customerKeyContacts": [{"shoeSize": 9}]}
    )
    assert record.customer_id == "C1"
    assert record.customer_key_contacts == [KeyContact()]


def test_an_unknown_reminder_type_is_kept_as_the_raw_string() -> None:
    record = customer_from_wire({"customerReminders": [{"reminderType": "WEEKLY"}]})
    assert record.customer_reminders[0].reminder_type == "WEEKLY"
    known = customer_from_wire({"customerReminders": [{"reminderType": "RECURRING"}]})
    assert known.customer_reminders[0].reminder_type is ReminderType.RECURRING


@pytest.mark.parametrize("model", [Customer, KeyContact, Reminder], ids=lambda m: m.__name__)
def test_null_is_accepted_for_every_field(model: type[Any]) -> None:
    nulls = {wire_name(a): None for a in attrs.fields(model)}
    if model is Customer:
        assert customer_from_wire(nulls) == Customer()
    else:
        outer = "customerKeyContacts" if model is KeyContact else "customerReminders"
        assert getattr(customer_from_wire({outer: [nulls]}), _python(outer)) == [model()]


def test_null_lists_become_empty_lists() -> None:
    record = customer_from_wire(
        {
            "branchCodes": None,
            "warnings": None,
            "customerKeyContacts": None,
            "customerReminders": None,
        }
    )
    assert record.branch_codes == [] and record.warnings == []
    assert record.customer_key_contacts == [] and record.customer_reminders == []


def test_nulls_inside_a_list_of_strings_are_dropped() -> None:
    assert customer_from_wire({"branchCodes": ["B1", None, "B2"]}).branch_codes == ["B1", "B2"]


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        (" False ", False),
        ("Y", True),
        ("N", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
        ("string", None),
        ("maybe", None),
        (None, None),
    ],
)
def test_deleted_may_come_as_a_string_or_a_bool(sent: Any, read: bool | None) -> None:
    record = customer_from_wire({"customerKeyContacts": [{"deleted": sent}]})
    assert record.customer_key_contacts[0].deleted is read


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("09:30", dt.time(9, 30)),
        ("09:30:15", dt.time(9, 30, 15)),
        ({"hour": 9, "minute": 30}, dt.time(9, 30)),
        ({"hour": 9, "minute": 30, "second": 0, "nano": 0}, dt.time(9, 30)),
        ({"hour": 9, "minute": 30, "second": 15}, dt.time(9, 30, 15)),
        ({"hour": "7"}, dt.time(7, 0)),
        ([9, 30], dt.time(9, 30)),
        ([9, 30, 15], dt.time(9, 30, 15)),
        ([9, 30, 15, 0], dt.time(9, 30, 15)),
    ],
)
def test_reminder_time_is_read_from_hh_mm_or_jackson_local_time(sent: Any, read: dt.time) -> None:
    record = customer_from_wire({"customerReminders": [{"reminderTime": sent}]})
    assert record.customer_reminders[0].reminder_time == read


@pytest.mark.parametrize(
    "sent",
    [
        "HH:mm",
        "9.30am",
        "",
        "25:00",
        {"hour": 25},
        {"hour": [1]},
        {"hour": 1e999},
        [99, 0],
        [9],
        [1, 2, 3, 4, 5],
        930,
        True,
    ],
)
def test_a_reminder_time_that_is_not_a_time_is_kept_as_a_string(sent: Any) -> None:
    record = customer_from_wire({"customerReminders": [{"reminderTime": sent}]})
    kept = record.customer_reminders[0].reminder_time
    assert isinstance(kept, str)
    if isinstance(sent, str):
        assert kept == sent


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("2019-08-24T14:15:22Z", dt.datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)),
        ("2019-08-24T14:15:22z", dt.datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)),
        ("2019-08-24T14:15:22.5Z", dt.datetime(2019, 8, 24, 14, 15, 22, 500000, tzinfo=UTC)),
        ("2019-08-24T14:15:22.123Z", dt.datetime(2019, 8, 24, 14, 15, 22, 123000, tzinfo=UTC)),
        # Java's Instant prints nanoseconds; a microsecond is as fine as Python goes
        (
            "2019-08-24T14:15:22.123456789Z",
            dt.datetime(2019, 8, 24, 14, 15, 22, 123456, tzinfo=UTC),
        ),
        ("2019-08-24 14:15:22", dt.datetime(2019, 8, 24, 14, 15, 22)),
        ("2019-08-24 14:15:22.0", dt.datetime(2019, 8, 24, 14, 15, 22)),
        ("2019-08-24T14:15:22", dt.datetime(2019, 8, 24, 14, 15, 22)),
        (
            "2019-08-24T19:45:22+05:30",
            dt.datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC).astimezone(
                dt.timezone(dt.timedelta(hours=5, minutes=30))
            ),
        ),
        # Jackson's default java.util.Date format writes the offset without a colon
        ("2019-08-24T14:15:22.000+0000", dt.datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)),
        (1566656122000, dt.datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)),  # epoch millis
        (None, None),
    ],
)
def test_datetimes_are_read_in_the_formats_enkash_and_java_write(sent: Any, read: Any) -> None:
    record = customer_from_wire({"createdOn": sent, "customerKeyContacts": [{"modifiedOn": sent}]})
    assert record.created_on == read
    assert record.customer_key_contacts[0].modified_on == read


@pytest.mark.parametrize(
    "sent", ["yyyy-MM-dd HH:mm:ss", "yesterday", "", "Z", 10**20, 1e300, -(10**18)]
)
def test_a_date_that_cannot_be_read_becomes_none_without_failing_the_record(sent: Any) -> None:
    record = customer_from_wire({"customerId": "C1", "createdOn": sent})
    assert record.customer_id == "C1" and record.created_on is None


@pytest.mark.parametrize(
    "sent",
    [
        "2019-08-24T14:15:22Z",
        "2019-08-24T14:15:22.5Z",
        "2019-08-24T19:45:22.123+05:30",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+05:30",
        "9999-12-31T23:59:59.999999-05:00",
    ],
)
def test_a_decoded_date_encodes_to_one_that_decodes_to_the_same_moment(sent: str) -> None:
    record = customer_from_wire({"createdOn": sent})
    assert record.created_on is not None
    assert customer_from_wire(record.to_dict()).created_on == record.created_on


@pytest.mark.parametrize(
    ("field", "sent", "attribute", "read"),
    [
        ("id", "42", "id", 42),
        ("id", " 42 ", "id", 42),
        ("id", 42.0, "id", 42),
        ("dsoMedian", "-3", "dso_median", -3),
        ("netAmount", "1500.25", "net_amount", Decimal("1500.25")),
        ("netAmount", 0.1, "net_amount", Decimal("0.1")),
        ("netAmount", 12, "net_amount", Decimal(12)),
        ("customerId", 1001, "customer_id", "1001"),
        ("pinCode", 560001, "pin_code", "560001"),
        ("active", "true", "active", True),
    ],
)
def test_numbers_may_come_as_strings_and_strings_as_numbers(
    field: str, sent: Any, attribute: str, read: Any
) -> None:
    assert getattr(customer_from_wire({field: sent}), attribute) == read


def test_nested_reminder_integers_may_come_as_strings() -> None:
    record = customer_from_wire({"customerReminders": [{"dueDateDifference": "5"}]})
    assert record.customer_reminders[0].due_date_difference == 5


def test_records_count_may_come_as_a_string() -> None:
    assert page_from_wire({"data": [], "recordsCount": "12"}) == ([], 12)


def test_a_page_without_data_or_count_is_empty() -> None:
    assert page_from_wire({}) == ([], None)
    assert page_from_wire({"data": None, "recordsCount": None}) == ([], None)


def test_a_page_decodes_every_record_in_order() -> None:
    customers, count = page_from_wire(
        {"data": [{"customerId": "C1"}, {"customerId": "C2"}], "recordsCount": 2}
    )
    assert [c.customer_id for c in customers] == ["C1", "C2"] and count == 2


# --------------------------------------------------------------------------- wrong shapes


@pytest.mark.parametrize(
    "payload",
    [
        [],
        [{"customerId": "C1"}],
        "C1",
        7,
        None,
        True,
        {"customerId": {"nested": 1}},
        {"legalName": ["Acme"]},
        {"id": "seven"},
        {"id": 1.5},
        {"id": [1]},
        {"id": True},
        {"netAmount": "lots"},
        {"netAmount": "NaN"},
        {"netAmount": "Infinity"},
        {"netAmount": float("inf")},
        {"netAmount": "sNaN"},
        {"netAmount": {}},
        {"active": []},
        {"createdOn": True},
        {"createdOn": {"epoch": 1}},
        {"branchCodes": "B1"},
        {"branchCodes": [{"code": "B1"}]},
        {"customerKeyContacts": {}},
        {"customerKeyContacts": ["Asha"]},
        {"customerKeyContacts": [{"mobile": {"n": 1}}]},
        {"customerReminders": [["ONCE"]]},
        {"customerReminders": [{"reminderType": {}}]},
        {"warnings": {"w": 1}},
    ],
)
def test_a_wrong_shaped_customer_raises_unexpected_response_error(payload: Any) -> None:
    with pytest.raises(UnexpectedResponseError) as info:
        customer_from_wire(payload)
    assert isinstance(info.value.__cause__, Exception)  # the original is chained


@pytest.mark.parametrize(
    "payload",
    [
        [],
        [{"customerId": "C1"}],
        "page",
        None,
        {"data": {}},
        {"data": "C1"},
        {"data": ["C1"]},
        {"data": [[]]},
        {"data": [{"id": "x"}]},
        {"recordsCount": "many"},
        {"recordsCount": []},
        {"recordsCount": 1.5},
    ],
)
def test_a_wrong_shaped_page_raises_unexpected_response_error(payload: Any) -> None:
    with pytest.raises(UnexpectedResponseError):
        page_from_wire(payload)


def test_a_wrong_shape_error_says_what_was_expected() -> None:
    with pytest.raises(UnexpectedResponseError, match="expected a list"):
        page_from_wire({"data": {"customerId": "C1"}})
    with pytest.raises(UnexpectedResponseError, match="expected a string"):
        customer_from_wire({"legalName": {"first": "A"}})


def test_a_wrong_shape_error_quotes_only_a_short_excerpt() -> None:
    with pytest.raises(UnexpectedResponseError) as info:
        customer_from_wire({"legalName": {"text": "x" * 10_000}})
    assert len(str(info.value)) < 300
    assert isinstance(info.value, EnkashError)


# --------------------------------------------------------------------------- from_dict


def test_from_dict_builds_the_whole_tree() -> None:
    built = CustomerCreate.from_dict(
        {
            "legalName": "Acme",
            "customerKeyContacts": [CONTACT],
            "customerReminders": [{"reminderTime": "09:30", "reminderType": "ONCE"}],
            "source": "TALLY",
        }
    )
    assert built == CustomerCreate(
        legal_name="Acme",
        customer_key_contacts=[
            KeyContactCreate(name="Asha", legal_name="Asha Rao", mobile="9876543210")
        ],
        customer_reminders=[ReminderCreate(reminder_time=dt.time(9, 30), reminder_type="ONCE")],
        source="TALLY",
    )


def test_from_dict_reports_every_problem_in_the_tree_with_its_python_path() -> None:
    with pytest.raises(ValidationError) as info:
        CustomerCreate.from_dict(
            {
                "legalName": "",
                "pinCode": "5600",
                "customerKeyContacts": [
                    CONTACT,
                    {**CONTACT, "mobile": 9876543210, "deleted": "false"},
                    {**CONTACT, "email": "nobody", "nickName": "A"},
                ],
                "customerReminders": [{"reminderType": "DAILY", "dueDateDifference": "3"}],
                "colour": "red",
            }
        )
    error = info.value
    assert error.model == "CustomerCreate"
    assert set(error.fields) == {
        "legal_name",
        "pin_code",
        "customer_key_contacts[1].mobile",
        "customer_key_contacts[1].deleted",
        "customer_key_contacts[2].email",
        "customer_key_contacts[2].nickName",
        "customer_reminders[0].reminder_type",
        "customer_reminders[0].due_date_difference",
        "colour",
    }
    assert len(error.fields) == len(set(error.fields))


def test_from_dict_reports_unknown_keys_as_undocumented() -> None:
    with pytest.raises(ValidationError) as info:
        CustomerCreate.from_dict({"legalName": "Acme", "customerKeyContacts": [], "gstin": "x"})
    assert info.value.fields == ("gstin",)
    assert "not a field" in info.value.errors[0].message


def test_from_dict_reports_wrong_json_types_instead_of_coercing_them() -> None:
    with pytest.raises(ValidationError) as info:
        CustomerCreate.from_dict(
            {
                "legalName": 5,
                "externalSource": "false",
                "customerKeyContacts": [
                    {**CONTACT, "mobile": 9876543210, "deleted": "false", "sms_enabled": 1}
                ],
            }
        )
    assert set(info.value.fields) == {
        "legal_name",
        "external_source",
        "customer_key_contacts[0].mobile",
        "customer_key_contacts[0].deleted",
        "customer_key_contacts[0].sms_enabled",
    }


def test_from_dict_reports_missing_required_keys_including_deleted() -> None:
    with pytest.raises(ValidationError) as info:
        CustomerCreate.from_dict({"customerKeyContacts": [{}]})
    assert set(info.value.fields) == {
        "legal_name",
        "customer_key_contacts[0].name",
        "customer_key_contacts[0].legal_name",
        "customer_key_contacts[0].mobile",
        "customer_key_contacts[0].deleted",
    }


def test_from_dict_reports_a_missing_key_contacts_list() -> None:
    with pytest.raises(ValidationError) as info:
        CustomerCreate.from_dict({"legalName": "Acme"})
    assert info.value.fields == ("customer_key_contacts",)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"legalName": "A", "customerKeyContacts": {"0": CONTACT}}, "customer_key_contacts"),
        ({"legalName": "A", "customerKeyContacts": ["Asha"]}, "customer_key_contacts[0]"),
        ({"legalName": "A", "customerKeyContacts": [None]}, "customer_key_contacts[0]"),
        (
            {"legalName": "A", "customerKeyContacts": [], "customerReminders": [[]]},
            "customer_reminders[0]",
        ),
    ],
)
def test_from_dict_reports_lists_and_objects_of_the_wrong_shape(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CustomerCreate.from_dict(data)
    assert info.value.fields == (field,)


@pytest.mark.parametrize("data", [[], "{}", None, 1])
def test_from_dict_of_something_other_than_an_object_is_a_validation_error(data: Any) -> None:
    with pytest.raises(ValidationError):
        CustomerCreate.from_dict(data)


def test_nested_from_dict_reports_paths_relative_to_the_model_built() -> None:
    with pytest.raises(ValidationError) as info:
        KeyContactCreate.from_dict({**CONTACT, "mobile": "123"})
    assert info.value.fields == ("mobile",)


def test_search_from_dict_reads_iso_dates_and_reports_unreadable_ones() -> None:
    search = CustomerSearch.from_dict({"createdOnFrom": "2024-01-01T00:00:00Z", "dsoTo": 30})
    assert search.created_on_from == dt.datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError) as info:
        CustomerSearch.from_dict({"createdOnFrom": "last week", "createdOnTo": 1704067200000})
    assert set(info.value.fields) == {"created_on_from", "created_on_to"}


def test_from_dict_never_raises_anything_but_validation_error_for_odd_values() -> None:
    odd: list[Any] = [{}, [], "x", 1.5, None, True, {"a": [1]}]
    for value in odd:
        for key in (
            "legalName",
            "customerKeyContacts",
            "customerReminders",
            "source",
            "externalSource",
            "panOrGstin",
        ):
            try:
                CustomerCreate.from_dict({"legalName": "A", "customerKeyContacts": [], key: value})
            except ValidationError as exc:
                assert exc.fields


# --------------------------------------------------------------------------- search replies


def search_body(records: list[Any], count: Any = None) -> bytes:
    """A search reply written the way the fake server writes one."""
    return json.dumps(
        {
            "payload": {"data": records, "recordsCount": count},
            "response_code": 0,
            "errorResponse": None,
        }
    ).encode()


def read_raw(record: dict[str, Any]) -> Customer:
    """One record read the way a streamed search reads it: from a raw view into the body."""
    (raw,) = read_search_reply(search_body([record]))["payload"]["data"]
    assert isinstance(raw, msgspec.Raw)
    customer: Customer = READ_CUSTOMER(raw)
    return customer


READ_CUSTOMER = record_reader(Customer, "CustomerResponse")


def test_a_search_reply_keeps_its_records_as_raw_views_into_the_body() -> None:
    records = [{"customerId": f"C{n}", "legalName": "Acme"} for n in range(3)]
    envelope = read_search_reply(search_body(records, 3))
    assert envelope["response_code"] == 0
    assert envelope["payload"]["recordsCount"] == 3
    assert [type(r) for r in envelope["payload"]["data"]] == [msgspec.Raw] * 3


def test_a_search_reply_of_another_shape_is_parsed_whole_like_any_reply() -> None:
    body = b'{"payload": ["not", "a", "page"], "response_code": 0}'
    assert read_search_reply(body) == json.loads(body)


def test_a_search_reply_with_nan_is_read_as_the_standard_parser_reads_it() -> None:
    body = b'{"payload": {"data": [{"netAmount": NaN}]}}'
    (record,) = read_search_reply(body)["payload"]["data"]
    assert record["netAmount"] != record["netAmount"]


@pytest.mark.parametrize("body", [b"", b"<html>", b'{"payload": {"data": [', b"[" * 100_000])
def test_a_search_reply_that_is_not_json_raises_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        read_search_reply(body)


def test_a_raw_record_reads_the_same_customer_as_the_liberal_reader() -> None:
    record = {
        "customerId": "C1",
        "id": 7,
        "active": True,
        "createdOn": "2019-08-24T14:15:22Z",
        "netAmount": 12.5,
        "branchCodes": ["B1"],
        "customerKeyContacts": [{"name": "Asha", "deleted": "false", "mail_enabled": True}],
        "customerReminders": [{"reminderType": "ONCE", "reminderTime": "15:00"}],
    }
    assert read_raw(record) == customer_from_wire(record)
    assert read_raw(record).customer_key_contacts[0].deleted is False


@pytest.mark.parametrize(
    "record",
    [
        {"legalName": 12},  # a number where a string belongs
        {"branchCodes": ["A", None]},  # null list items
        {"customerKeyContacts": [{"deleted": "yes"}]},
        {"active": "yes"},  # a flag documented as a boolean, sent as a string
        {"customerKeyContacts": [{"mail_enabled": "false"}]},
        {"customerKeyContacts": [{"deleted": True}]},  # the string flag sent as a boolean
        {"customerReminders": [{"reminderTime": {"hour": 9, "minute": 30}}]},
        {"customerReminders": [{"reminderType": "WEEKLY"}]},  # unknown enum value kept
        {"createdOn": 1566656122000},  # epoch millis
        {"createdOn": "24/08/2019"},  # odd date: unknown
        {"id": "42"},
        {"unknownKey": {"deep": [1, 2]}},
    ],
)
def test_a_raw_record_with_a_quirk_reads_as_the_liberal_reader_reads_it(
    record: dict[str, Any],
) -> None:
    assert read_raw(record) == customer_from_wire(record)


def test_fractional_seconds_beyond_microseconds_are_truncated() -> None:
    record = {"createdOn": "2019-08-24T14:15:22.9999999Z"}
    expected = dt.datetime(2019, 8, 24, 14, 15, 22, 999999, tzinfo=UTC)
    assert read_raw(record).created_on == expected
    assert customer_from_wire(record).created_on == expected


def test_each_date_time_reads_from_its_own_text_when_a_record_repeats_some() -> None:
    first, second = "2019-08-24T14:15:22Z", "2020-01-02T03:04:05+05:30"
    record = {
        "createdOn": first,
        "modifiedOn": second,
        "customerKeyContacts": [
            {"createdOn": first, "modifiedOn": first},
            {"createdOn": second, "modifiedOn": None},
            {"createdOn": first, "modifiedOn": second},
        ],
    }
    customer = read_raw(record)
    assert customer == customer_from_wire(record)
    times = [(c.created_on, c.modified_on) for c in customer.customer_key_contacts]
    # Built by hand: Python 3.10's fromisoformat does not read a trailing Z.
    one = dt.datetime(2019, 8, 24, 14, 15, 22, tzinfo=dt.timezone.utc)
    two = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert (customer.created_on, customer.modified_on) == (one, two)
    assert times == [(one, one), (two, None), (one, two)]


def test_an_amount_in_exponent_notation_reads_as_the_float_it_is() -> None:
    amount = read_raw({"netAmount": 1e5}).net_amount
    assert amount == Decimal("100000.0")
    assert str(amount) == "100000.0"  # as the liberal reader gives it, not 1E+5


def test_an_unreadable_field_is_named_by_its_wire_path() -> None:
    record = {"customerId": "C1", "customerKeyContacts": [{"name": "A"}, {"mobile": {"a": 1}}]}
    with pytest.raises(UnexpectedResponseError, match=r"\$\.customerKeyContacts\[1\]\.mobile"):
        read_raw(record)
    with pytest.raises(UnexpectedResponseError, match=r"\$\.customerKeyContacts\[1\]\.mobile"):
        customer_from_wire(record)


@pytest.mark.parametrize("key", ["netAmount", "legalName", "customerKeyContacts", "unknownKey"])
def test_a_record_nested_up_to_the_envelopes_limit_reads_or_raises_unexpected_response(
    key: str,
) -> None:
    """Depths where the envelope still parses but reading (or describing) the value
    recurses too far: the reader's error is typed, never a RecursionError."""
    limit = sys.getrecursionlimit()
    for depth in range(limit - 60, limit + 5):
        body = b'{"payload": {"data": [{"%s": %s%s}]}}' % (key.encode(), b"[" * depth, b"]" * depth)
        try:
            (raw,) = read_search_reply(body)["payload"]["data"]
        except ValueError:
            continue  # refused whole, as too deep, by the envelope
        with contextlib.suppress(UnexpectedResponseError):
            READ_CUSTOMER(raw)


def test_a_record_that_is_not_an_object_is_refused_by_the_page_check() -> None:
    envelope = read_search_reply(search_body([{"customerId": "C1"}, 5]))
    with pytest.raises(UnexpectedResponseError, match=r"\$\.data\[1\]"):
        page_records_from_wire(envelope["payload"], Customer)


def test_a_raw_record_key_is_its_customer_id_else_its_id() -> None:
    body = search_body([{"customerId": "C1", "id": 1}, {"id": 2}, {}])
    keys = [record_key(raw) for raw in read_search_reply(body)["payload"]["data"]]
    assert keys == ["C1", 2, None]


def test_a_traceback_through_generated_code_shows_its_source() -> None:
    (raw,) = read_search_reply(search_body([{"netAmount": True}]))["payload"]["data"]
    _, build = _struct_and_builder(Customer)
    struct = msgspec.json.Decoder(_struct_and_builder(Customer)[0]).decode(raw)
    with pytest.raises(Exception) as caught:
        build(struct)
    frames = traceback.extract_tb(caught.value.__traceback__)
    generated = [frame for frame in frames if frame.filename.startswith("<enkash_async generated")]
    assert generated and "net_amount" in (generated[0].line or "")


def test_a_record_reply_keeps_its_payload_as_a_raw_view_read_like_any_record() -> None:
    record = {"customerId": "C1", "createdOn": "2019-08-24T14:15:22Z", "netAmount": 1}
    body = json.dumps({"payload": record, "response_code": 0}).encode()
    envelope = read_record_reply(body)
    assert isinstance(envelope["payload"], msgspec.Raw)
    assert READ_CUSTOMER(envelope["payload"]) == customer_from_wire(record)


@pytest.mark.parametrize("body", [b'{"payload": null}', b"{}", b'{"payload" :  null }'])
def test_a_record_reply_without_a_payload_has_none(body: bytes) -> None:
    assert read_record_reply(body)["payload"] is None


def test_a_record_reply_payload_that_is_no_object_is_refused_when_read() -> None:
    envelope = read_record_reply(b'{"payload": [1, 2]}')
    with pytest.raises(UnexpectedResponseError, match="CustomerResponse"):
        READ_CUSTOMER(envelope["payload"])


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b'{"payload": {"a": NaN}}'])
def test_a_record_reply_of_another_shape_is_parsed_whole_like_any_reply(body: bytes) -> None:
    assert repr(read_record_reply(body)) == repr(json.loads(body))


@pytest.mark.parametrize("read", [read_search_reply, read_record_reply])
@pytest.mark.parametrize(
    "envelope",
    [
        {"payload": None, "response_code": 117, "response_message": "token expired"},
        {"payload": None, "errorResponse": {"errorType": "SYSTEM_ERROR"}, "message": "down"},
        {"payload": {"data": []}, "response_code": "7", "error": "odd"},
    ],
)
def test_a_reply_that_is_not_a_plain_success_is_parsed_whole(
    read: Any, envelope: dict[str, Any]
) -> None:
    body = json.dumps(envelope).encode()
    assert read(body) == envelope  # every key kept: an error's message may be in any
