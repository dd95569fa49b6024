"""The domain models: strict requests that check themselves, liberal reply records."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import attrs
import pytest

from enkash_async import _validation, models
from enkash_async.errors import EnkashError, FieldError, ValidationError
from enkash_async.models import (
    CHECK,
    Customer,
    CustomerCreate,
    CustomerLevel,
    CustomerSearch,
    CustomerSource,
    CustomerStatus,
    KeyContact,
    KeyContactCreate,
    Page,
    Reminder,
    ReminderCreate,
    ReminderType,
    csv_cell_types,
    csv_columns,
    to_row,
)

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def contact(**overrides: Any) -> KeyContactCreate:
    fields: dict[str, Any] = {"name": "Asha Rao", "legal_name": "Asha Rao", "mobile": "9876543210"}
    return KeyContactCreate(**{**fields, **overrides})


def customer(**overrides: Any) -> CustomerCreate:
    fields: dict[str, Any] = {"legal_name": "Acme Traders", "customer_key_contacts": [contact()]}
    return CustomerCreate(**{**fields, **overrides})


def raised(build: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        build(*args, **kwargs)
    return info.value


def assert_plain_json(value: Any) -> None:
    """Only the types ``json.loads`` produces: no enums, tuples, datetimes or Decimals."""
    if isinstance(value, dict):
        assert all(type(k) is str for k in value)
        for item in value.values():
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    else:
        assert type(value) in (str, int, float, bool, type(None)), repr(value)


# --------------------------------------------------------------------------- the error


def test_validation_error_is_an_enkash_error_and_a_value_error() -> None:
    error = raised(customer, legal_name="")
    assert isinstance(error, EnkashError)
    assert isinstance(error, ValueError)


def test_validation_error_names_the_model_and_each_field_in_its_message() -> None:
    error = raised(customer, legal_name="", pin_code="12")
    assert error.model == "CustomerCreate"
    assert (
        "CustomerCreate" in str(error) and "legal_name" in str(error) and "pin_code" in str(error)
    )
    assert all(isinstance(e, FieldError) for e in error.errors)
    assert error.fields == tuple(e.path for e in error.errors)


# --------------------------------------------------------------------------- CustomerCreate


def test_a_valid_customer_create_builds() -> None:
    built = customer(pan_or_gstin="27AAPFU0939F1ZV", pin_code="560001", source="TALLY")
    assert built.source is CustomerSource.TALLY
    assert built.customer_key_contacts == (contact(),)


def test_customer_create_requires_legal_name_and_key_contacts() -> None:
    error = raised(CustomerCreate, legal_name=None, customer_key_contacts=None)
    assert set(error.fields) == {"legal_name", "customer_key_contacts"}
    assert all("required" in e.message for e in error.errors)


def test_customer_create_reports_all_bad_fields_in_one_error() -> None:
    error = raised(
        customer,
        legal_name="   ",
        account_number="12",
        company_id="XYZ",
        contact_number="12345",
        ifsc="HDFC1234",
        pan_or_gstin="27AAPFU0939F1ZX",
        pin_code="5600011",
        external_source="yes",
        source="SAP",
        customer_reminders=["daily"],
        address=42,
    )
    assert set(error.fields) == {
        "legal_name",
        "account_number",
        "company_id",
        "contact_number",
        "ifsc",
        "pan_or_gstin",
        "pin_code",
        "external_source",
        "source",
        "customer_reminders",
        "address",
    }


def test_customer_create_rejects_key_contacts_that_are_not_key_contact_creates() -> None:
    error = raised(customer, customer_key_contacts=[{"name": "A"}])
    assert error.fields == ("customer_key_contacts",)
    error = raised(customer, customer_key_contacts="Asha")
    assert error.fields == ("customer_key_contacts",)


def test_customer_create_stores_lists_as_tuples_so_it_stays_immutable() -> None:
    built = customer(customer_reminders=[ReminderCreate()])
    assert isinstance(built.customer_key_contacts, tuple)
    assert isinstance(built.customer_reminders, tuple)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.legal_name = "Other"  # type: ignore[misc]


def test_a_wrong_check_character_in_a_gstin_is_reported() -> None:
    error = raised(customer, pan_or_gstin="27AAPFU0939F1ZX")
    assert error.fields == ("pan_or_gstin",)
    assert "'V'" in error.errors[0].message


# --------------------------------------------------------------------------- KeyContactCreate


def test_key_contact_requires_name_legal_name_mobile_and_deleted() -> None:
    error = raised(KeyContactCreate, name=None, legal_name=None, mobile=None, deleted=None)
    assert set(error.fields) == {"name", "legal_name", "mobile", "deleted"}


def test_key_contact_deleted_defaults_to_false() -> None:
    assert contact().deleted is False


def test_key_contact_names_must_not_be_blank() -> None:
    error = raised(contact, name=" ", legal_name="\t")
    assert set(error.fields) == {"name", "legal_name"}


def test_key_contact_checks_mobile_email_and_flags() -> None:
    error = raised(
        contact, mobile="98765", email="not-an-email", deleted="false", sms_enabled=1, via=3
    )
    assert set(error.fields) == {"mobile", "email", "deleted", "sms_enabled", "via"}


def test_key_contact_mobile_must_be_a_string_not_a_number() -> None:
    error = raised(contact, mobile=9876543210)
    assert error.fields == ("mobile",)
    assert "string" in error.errors[0].message


# --------------------------------------------------------------------------- ReminderCreate


def test_reminder_checks_integers_fit_in_32_bits() -> None:
    error = raised(ReminderCreate, due_date_difference=2**31, reminder_interval=-(2**31) - 1)
    assert set(error.fields) == {"due_date_difference", "reminder_interval"}
    ReminderCreate(due_date_difference=2**31 - 1, reminder_interval=-(2**31))


def test_reminder_rejects_booleans_and_floats_as_integers() -> None:
    error = raised(ReminderCreate, due_date_difference=True, reminder_interval=1.0)
    assert set(error.fields) == {"due_date_difference", "reminder_interval"}


def test_reminder_type_accepts_a_member_or_its_value_and_rejects_others() -> None:
    assert ReminderCreate(reminder_type="RECURRING").reminder_type is ReminderType.RECURRING
    assert ReminderCreate(reminder_type=ReminderType.ONCE).reminder_type is ReminderType.ONCE
    assert raised(ReminderCreate, reminder_type="once").fields == ("reminder_type",)
    assert raised(ReminderCreate, reminder_type=CustomerSource.ENKASH).fields == ("reminder_type",)


@pytest.mark.parametrize(
    ("value", "time"),
    [
        ("09:30", dt.time(9, 30)),
        ("00:00", dt.time(0, 0)),
        ("23:59", dt.time(23, 59)),
        (dt.time(18, 5), dt.time(18, 5)),
        (None, None),
    ],
)
def test_reminder_time_is_a_time_of_day_in_hours_and_minutes(value: Any, time: Any) -> None:
    assert ReminderCreate(reminder_time=value).reminder_time == time


def test_reminder_time_given_as_hh_mm_is_held_as_a_time() -> None:
    assert ReminderCreate(reminder_time="07:05").reminder_time == dt.time(7, 5)


@pytest.mark.parametrize(
    "value",
    [
        "HH:mm",
        "9:30",
        "24:00",
        "09:60",
        "09:30:00",
        "0930",
        " 09:30",
        930,
        dt.time(9, 30, 15),
        dt.time(9, 30, 0, 1),
        dt.time(9, 30, tzinfo=IST),
    ],
)
def test_reminder_time_that_hh_mm_cannot_carry_is_rejected(value: Any) -> None:
    assert raised(ReminderCreate, reminder_time=value).fields == ("reminder_time",)


# --------------------------------------------------------------------------- CustomerSearch


def test_customer_search_needs_no_filters() -> None:
    assert CustomerSearch().to_dict() == {}


def test_customer_search_checks_types_and_enums() -> None:
    error = raised(
        CustomerSearch,
        customer_status="OPEN",
        level="LEVEL_4",
        dso_from=2**40,
        dso_to="5",
        created_on_from="2024-01-01",
        customer_ids=["C1", 2],
        select_all="true",
        balance_amount="100",
        legal_name=5,
    )
    assert set(error.fields) == {
        "customer_status",
        "level",
        "dso_from",
        "dso_to",
        "created_on_from",
        "customer_ids",
        "select_all",
        "balance_amount",
        "legal_name",
    }


@pytest.mark.parametrize(
    "amount", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"), Decimal("sNaN")]
)
def test_customer_search_balance_amount_must_be_finite(amount: Any) -> None:
    assert raised(CustomerSearch, balance_amount=amount).fields == ("balance_amount",)


def test_customer_search_enums_accept_their_values() -> None:
    search = CustomerSearch(customer_status="INACTIVE", level="LEVEL_2")
    assert search.customer_status is CustomerStatus.INACTIVE
    assert search.level is CustomerLevel.LEVEL_2


# --------------------------------------------------------------------------- to_dict


def test_unset_optional_fields_are_left_out_of_to_dict_never_sent_as_null() -> None:
    wire = customer(customer_reminders=[ReminderCreate(stage="due")]).to_dict()
    assert wire == {
        "legalName": "Acme Traders",
        "customerKeyContacts": [
            {"name": "Asha Rao", "legalName": "Asha Rao", "mobile": "9876543210", "deleted": False}
        ],
        "customerReminders": [{"stage": "due"}],
    }


def test_deleted_is_always_sent() -> None:
    assert contact().to_dict()["deleted"] is False
    assert contact(deleted=True).to_dict()["deleted"] is True


def test_set_falsy_values_are_sent() -> None:
    wire = customer(address="", external_source=False, customer_reminders=[]).to_dict()
    assert wire["address"] == "" and wire["externalSource"] is False
    assert wire["customerReminders"] == []


def test_request_to_dict_holds_only_plain_json_values() -> None:
    wire = customer(
        source=CustomerSource.ENKASH,
        customer_reminders=[ReminderCreate(reminder_type="ONCE", reminder_time=dt.time(18, 0))],
    ).to_dict()
    assert_plain_json(wire)
    assert wire["source"] == "ENKASH"
    assert wire["customerReminders"] == [{"reminderTime": "18:00", "reminderType": "ONCE"}]


def test_search_to_dict_holds_only_plain_json_values() -> None:
    wire = CustomerSearch(
        customer_status=CustomerStatus.ALL,
        level="LEVEL_3",
        customer_ids=["C1", "C2"],
        balance_amount=Decimal("1500.50"),
        created_on_from=dt.datetime(2024, 1, 1, 5, 30, tzinfo=IST),
    ).to_dict()
    assert_plain_json(wire)
    assert wire == {
        "customerStatus": "ALL",
        "level": "LEVEL_3",
        "customerIds": ["C1", "C2"],
        "balanceAmount": 1500.5,
        "createdOnFrom": "2024-01-01T00:00:00Z",
    }


def test_search_dates_keep_fractions_of_a_second() -> None:
    moment = dt.datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=dt.timezone.utc)
    assert CustomerSearch(modified_on=moment).to_dict() == {
        "modifiedOn": "2024-01-01T00:00:00.250000Z"
    }


# --------------------------------------------------------------------------- replies


def full_customer() -> Customer:
    when = dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.timezone.utc)
    return Customer(
        customer_id="CUST1",
        id=7,
        legal_name="Acme Traders",
        created_on=when,
        net_amount=Decimal("12.50"),
        branch_codes=["B1", "B2"],
        contact_email="ap@acme.example",
        customer_key_contacts=[
            KeyContact(
                name="Asha", mobile="9876543210", email="asha@acme.example", mail_enabled=True
            )
        ],
        customer_reminders=[
            Reminder(reminder_time=dt.time(9, 0), reminder_type=ReminderType.ONCE),
            Reminder(reminder_time="HH:mm", reminder_type="WEEKLY"),
        ],
    )


def test_customer_to_dict_uses_wire_names_and_json_values() -> None:
    wire = full_customer().to_dict()
    assert_plain_json(wire)
    assert wire == {
        "customerId": "CUST1",
        "id": 7,
        "legalName": "Acme Traders",
        "createdOn": "2024-03-01T10:00:00Z",
        "netAmount": 12.5,
        "branchCodes": ["B1", "B2"],
        "contactEmail": "ap@acme.example",
        "customerKeyContacts": [
            {
                "name": "Asha",
                "mobile": "9876543210",
                "email": "asha@acme.example",
                "mail_enabled": True,
            }
        ],
        "customerReminders": [
            {"reminderTime": "09:00", "reminderType": "ONCE"},
            {"reminderTime": "HH:mm", "reminderType": "WEEKLY"},
        ],
        "warnings": [],
    }
    json.dumps(wire, allow_nan=False)


def test_customer_to_dict_wire_false_uses_python_names_and_values() -> None:
    record = full_customer()
    python = record.to_dict(wire=False)
    assert set(python) == {a.name for a in attrs.fields(Customer)}
    assert python["created_on"] == record.created_on
    assert python["net_amount"] == Decimal("12.50")
    assert python["customer_key_contacts"][0]["mail_enabled"] is True
    assert python["customer_reminders"][0]["reminder_type"] is ReminderType.ONCE
    assert python["contact_email"] == "ap@acme.example"


def test_reply_records_accept_values_outside_the_known_enums() -> None:
    reminder = Reminder(reminder_type="WEEKLY", reminder_time="whenever")
    assert reminder.to_dict() == {"reminderType": "WEEKLY", "reminderTime": "whenever"}


# --------------------------------------------------------------------------- Page.to_rows


def page_of(*items: Customer) -> Page[Customer]:
    return Page(items=list(items), offset=0, limit=10, records_count=len(items), next_offset=None)


def test_to_rows_gives_one_flat_dict_per_customer() -> None:
    rows = page_of(full_customer(), Customer(customer_id="CUST2")).to_rows()
    assert len(rows) == 2
    for row in rows:
        assert all(not isinstance(v, (list, dict, tuple)) for v in row.values()), row
    first = rows[0]
    assert first["customer_id"] == "CUST1"
    assert first["branch_codes"] == "B1, B2"
    assert first["customer_key_contacts_count"] == 1
    assert first["customer_reminders_count"] == 2
    assert first["created_on"] == dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.timezone.utc)


def test_to_rows_gives_every_customer_the_same_columns() -> None:
    rows = page_of(full_customer(), Customer(customer_id="CUST2")).to_rows()
    assert list(rows[0]) == list(rows[1])
    assert rows[1]["customer_key_contacts_count"] == 0
    assert rows[1]["customer_reminders_count"] == 0


def test_to_rows_keeps_the_customers_own_contact_email_apart_from_its_key_contacts() -> None:
    row = page_of(full_customer()).to_rows()[0]
    assert row["contact_email"] == "ap@acme.example"
    assert row["key_contact_email"] == "asha@acme.example"
    assert row["key_contact_name"] == "Asha"
    assert row["key_contact_mobile"] == "9876543210"


def test_page_length_is_its_item_count() -> None:
    assert len(page_of(Customer(), Customer())) == 2


# --------------------------------------------------------------------------- fields declared once

REQUEST_MODELS = (CustomerCreate, KeyContactCreate, ReminderCreate, CustomerSearch)


@pytest.mark.parametrize("model", REQUEST_MODELS)
def test_every_request_field_declares_its_check(model: type[Any]) -> None:
    assert [a.name for a in attrs.fields(model) if CHECK not in a.metadata] == []


def test_a_field_declared_with_its_check_and_wire_name_is_validated_and_named_by_them() -> None:
    @attrs.frozen(kw_only=True)
    class Probe(models._Request):
        odd_name: str | None = models._field(
            _validation.text(pattern="pinCode"), default=None, wire="odd"
        )

    assert Probe(odd_name="123456").to_dict() == {"odd": "123456"}
    assert Probe.from_dict({"odd": "123456"}) == Probe(odd_name="123456")
    with pytest.raises(ValidationError) as caught:
        Probe(odd_name="12")
    assert [e.path for e in caught.value.errors] == ["odd_name"]


def test_csv_columns_are_the_keys_of_every_row() -> None:
    full = Customer(customer_key_contacts=[KeyContact()], customer_reminders=[Reminder()])
    assert list(to_row(full)) == csv_columns(Customer)
    assert list(to_row(Customer())) == csv_columns(Customer)


def test_csv_cell_types_name_the_wire_keys_whose_cells_are_not_text() -> None:
    cells = csv_cell_types(CustomerCreate)
    assert {key for key, kind in cells.items() if kind is bool} == {
        "deleted",
        "mail_enabled",
        "sms_enabled",
        "whatsapp_enabled",
        "externalSource",
    }
    assert {key for key, kind in cells.items() if kind is int} == {
        "dueDateDifference",
        "reminderInterval",
    }
    assert cells["legalName"] is str
