"""POST /api/v0/customer: the stored customer, the reply's shape, and validation."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from enkash_async._validation import gstin_check_character
from enkash_async.testing import CUSTOMER_FIELDS, KEY_CONTACT_FIELDS, REMINDER_FIELDS

if TYPE_CHECKING:
    from conftest import Api

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b[0].c``-style ``path`` in ``body``; the value ``...`` deletes the key."""
    *parents, last = re.findall(r"[^.\[\]]+", path)
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del target[key]
    else:
        target[key] = value


async def test_create_answers_the_full_customer_response(api: Api, valid_body: dict) -> None:
    reply = await api.create(valid_body)

    assert reply.status == 200
    assert reply.json["errorResponse"] is None
    assert reply.json["response_code"] == 0
    customer = reply.json["payload"]
    assert tuple(customer) == CUSTOMER_FIELDS
    assert len(CUSTOMER_FIELDS) == 31


async def test_created_customer_id_is_kc_and_14_upper_case_letters_or_digits(
    api: Api, valid_body: dict
) -> None:
    customer = (await api.create(valid_body)).json["payload"]

    assert re.fullmatch(r"KC[A-Z0-9]{14}", customer["customerId"])


async def test_created_customers_get_unique_ids_and_increasing_numbers(
    api: Api, valid_body: dict
) -> None:
    first = (await api.create(valid_body)).json["payload"]
    second = (await api.create(valid_body)).json["payload"]

    assert first["customerId"] != second["customerId"]
    assert second["id"] == first["id"] + 1


async def test_created_customer_echoes_the_request_and_fills_server_fields(
    api: Api, valid_body: dict
) -> None:
    customer = (await api.create(valid_body)).json["payload"]

    for field in (
        "accountNumber",
        "address",
        "companyId",
        "contactNumber",
        "ifsc",
        "legalName",
        "panOrGstin",
        "pinCode",
        "state",
        "uniqueRefNo",
    ):
        assert customer[field] == valid_body[field], field
    assert customer["active"] is True
    assert customer["bankName"] == "HDFC Bank"
    assert customer["contactEmail"] == "priya.sharma@acme.in"
    assert customer["createdBy"] and customer["createdByName"]
    assert customer["modifiedBy"] and customer["modifiedByName"]
    assert ISO.fullmatch(customer["createdOn"])
    assert customer["modifiedOn"] == customer["createdOn"]
    assert customer["branchCodes"] == [] and customer["warnings"] == []


async def test_key_contacts_come_back_with_14_fields_and_deleted_as_a_string(
    api: Api, valid_body: dict
) -> None:
    customer = (await api.create(valid_body)).json["payload"]

    (contact,) = customer["customerKeyContacts"]
    assert tuple(contact) == KEY_CONTACT_FIELDS
    assert contact["deleted"] == "false"
    assert contact["customerId"] == customer["customerId"]
    assert contact["mobile"] == "9876543210"
    assert contact["mail_enabled"] is True and contact["whatsapp_enabled"] is True
    assert contact["sms_enabled"] is False
    assert contact["keyContactPersonId"]
    assert ISO.fullmatch(contact["createdOn"])


async def test_reminders_come_back_with_7_fields_and_hh_mm_times(
    api: Api, valid_body: dict
) -> None:
    valid_body["customerReminders"][0]["reminderTime"] = "09:45:00"

    customer = (await api.create(valid_body)).json["payload"]

    (reminder,) = customer["customerReminders"]
    assert tuple(reminder) == REMINDER_FIELDS
    assert reminder["reminderTime"] == "09:45"
    assert reminder["reminderType"] == "ONCE"
    assert reminder["customerId"] == customer["customerId"]
    assert reminder["customerReminderId"]


async def test_create_stores_the_customer(api: Api, valid_body: dict) -> None:
    customer = (await api.create(valid_body)).json["payload"]

    assert api.server.stored_count == 1
    assert api.server.customers == [customer]
    assert api.server.created_customers == [customer]
    assert api.server.get_customer(customer["customerId"]) == customer


async def test_duplicate_unique_ref_numbers_are_stored_and_findable(
    api: Api, valid_body: dict
) -> None:
    first = await api.create(valid_body)
    second = await api.create(valid_body)

    assert first.status == second.status == 200
    found = api.server.find_by_unique_ref("ERP-9000001")
    assert [c["customerId"] for c in found] == [
        first.json["payload"]["customerId"],
        second.json["payload"]["customerId"],
    ]


async def test_only_required_fields_are_enough(api: Api) -> None:
    body = {
        "legalName": "Minimal Traders",
        "customerKeyContacts": [
            {
                "name": "Amit",
                "legalName": "Minimal Traders",
                "mobile": "9123456780",
                "deleted": False,
            }
        ],
    }

    reply = await api.create(body)

    assert reply.status == 200
    customer = reply.json["payload"]
    assert customer["customerReminders"] == []
    assert customer["uniqueRefNo"] is None
    assert customer["customerKeyContacts"][0]["email"] is None


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("accountNumber", "12345678"),
        ("accountNumber", "1234-5678-90"),
        ("companyId", "CEK123"),
        ("companyId", "cek1A2B3C4"),
        ("contactNumber", "98765"),
        ("contactNumber", "+91 98765 43210"),
        ("ifsc", "HDFC1001234"),
        ("ifsc", "HDF00001234"),
        ("pinCode", "56001"),
        ("pinCode", "5600011"),
        ("panOrGstin", "ABCDE1234"),
        ("panOrGstin", "ABCZE1234F"),
        ("panOrGstin", "99AAACA1234A1Z5"),
        ("customerKeyContacts[0].mobile", "12345"),
        ("customerKeyContacts[0].email", "not-an-email"),
        ("customerKeyContacts[0].email", ""),
    ],
)
async def test_each_documented_pattern_is_enforced(
    api: Api, valid_body: dict, path: str, value: str
) -> None:
    _set(valid_body, path, value)

    reply = await api.create(valid_body)

    assert reply.status == 400
    assert reply.error["errorType"] == "VALIDATION_ERROR"
    assert reply.error["apiSubErrors"] == [
        {"field": path, "rejectedValue": value, "message": reply.sub_errors[path]}
    ]
    assert api.server.stored_count == 0


async def test_a_gstin_with_a_wrong_check_character_is_rejected(api: Api, valid_body: dict) -> None:
    first14 = "27AAPFU0939F1Z"
    right = gstin_check_character(first14)
    wrong = "A" if right != "A" else "B"
    valid_body["panOrGstin"] = first14 + wrong

    reply = await api.create(valid_body)

    assert reply.status == 400
    assert "check character" in reply.sub_errors["panOrGstin"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("accountNumber", ""),
        ("contactNumber", ""),
        ("contactNumber", "9876543210"),
        ("contactNumber", "0091-9876543210"),
        ("ifsc", ""),
        ("ifsc", "sbin0abc123"),
        ("pinCode", ""),
        ("panOrGstin", ""),
        ("panOrGstin", "AAACA1234A"),
        ("panOrGstin", "27AAPFU0939F1Z" + gstin_check_character("27AAPFU0939F1Z")),
        ("customerKeyContacts[0].mobile", "+919876543210"),
        ("customerReminders[0].reminderTime", "23:59:59"),
        ("source", "TALLY"),
        ("customerReminders[0].reminderType", "RECURRING"),
    ],
)
async def test_documented_edge_values_are_accepted(
    api: Api, valid_body: dict, path: str, value: str
) -> None:
    _set(valid_body, path, value)

    assert (await api.create(valid_body)).status == 200


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("legalName", ..., "must not be null"),
        ("legalName", None, "must not be null"),
        ("legalName", "   ", "must not be blank"),
        ("customerKeyContacts", ..., "must not be null"),
        ("customerKeyContacts[0].name", ..., "must not be null"),
        ("customerKeyContacts[0].legalName", "", "must not be blank"),
        ("customerKeyContacts[0].mobile", ..., "must not be null"),
        ("customerKeyContacts[0].deleted", ..., "must not be null"),
    ],
)
async def test_missing_required_fields_are_named(
    api: Api, valid_body: dict, path: str, value: Any, message: str
) -> None:
    _set(valid_body, path, value)

    reply = await api.create(valid_body)

    assert reply.status == 400
    assert reply.error["errorType"] == "VALIDATION_ERROR"
    assert reply.sub_errors == {path: message}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("legalName", 42, "must be a string"),
        ("customerKeyContacts", {"name": "x"}, "must be an array"),
        ("customerKeyContacts[0]", "Priya", "must be an object"),
        ("customerKeyContacts[0].deleted", "false", "must be a boolean"),
        ("customerKeyContacts[0].mail_enabled", 1, "must be a boolean"),
        ("externalSource", "true", "must be a boolean"),
        ("customerReminders[0].dueDateDifference", "3", "must be an integer"),
        ("customerReminders[0].reminderInterval", 1.5, "must be an integer"),
        ("customerReminders[0].reminderInterval", True, "must be an integer"),
        ("customerReminders[0].dueDateDifference", 2**31, "must fit in 32 bits"),
        ("customerReminders[0].reminderTime", "25:00", "HH:mm"),
        ("customerReminders[0].reminderType", "DAILY", "ONCE, RECURRING"),
        ("source", "SAP", "ENKASH, TALLY"),
        ("uniqueRefNo", ["ERP-1"], "must be a string"),
    ],
)
async def test_wrong_json_types_are_rejected_per_field(
    api: Api, valid_body: dict, path: str, value: Any, message: str
) -> None:
    _set(valid_body, path, value)

    reply = await api.create(valid_body)

    assert reply.status == 400
    assert list(reply.sub_errors) == [path]
    assert message in reply.sub_errors[path]


async def test_every_bad_field_gets_its_own_sub_error(api: Api, valid_body: dict) -> None:
    valid_body["ifsc"] = "bad"
    valid_body["pinCode"] = "1"
    valid_body["customerKeyContacts"].append(
        {"name": "Ravi", "legalName": "Acme", "mobile": "123", "deleted": "no"}
    )

    reply = await api.create(valid_body)

    assert set(reply.sub_errors) == {
        "ifsc",
        "pinCode",
        "customerKeyContacts[1].mobile",
        "customerKeyContacts[1].deleted",
    }
    rejected = {sub["field"]: sub["rejectedValue"] for sub in reply.error["apiSubErrors"]}
    assert rejected["customerKeyContacts[1].mobile"] == "123"


async def test_unknown_fields_are_rejected_by_default(api: Api, valid_body: dict) -> None:
    valid_body["unique_ref_no"] = "ERP-1"

    reply = await api.create(valid_body)

    assert reply.status == 400
    assert list(reply.sub_errors) == ["unique_ref_no"]


@pytest.mark.enkash_server(strict=False)
async def test_unknown_fields_are_ignored_when_not_strict(api: Api, valid_body: dict) -> None:
    valid_body["somethingElse"] = True

    assert (await api.create(valid_body)).status == 200


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "Malformed JSON"),
        (b"", "body is missing"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b'{"legalName": NaN}', "Malformed JSON"),
        (b"\xff\xfe", "Malformed JSON"),
    ],
    ids=["garbage", "empty", "array", "string", "nan", "not-utf8"],
)
async def test_a_body_that_is_not_a_json_object_is_a_client_request_error(
    api: Api, raw: bytes, message: str
) -> None:
    reply = await api.post(
        "/api/v0/customer", data=raw, headers={"Content-Type": "application/json"}
    )

    assert reply.status == 400
    assert reply.error["errorType"] == "CLIENT_REQUEST_ERROR"
    assert message in reply.error["errorMessage"]
    assert api.server.stored_count == 0
