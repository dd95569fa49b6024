"""``EnkashClient`` construction and ``customers.create``."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from _support import BASE, CREATE_PATH, FakeTransport, reply

from enkash_async import (
    AmbiguousCreateError,
    BadRequestError,
    Customer,
    CustomerCreate,
    EnkashClient,
    KeyContactCreate,
    PasswordCredentials,
    ReminderCreate,
    ReminderType,
    RetryPolicy,
    UnexpectedResponseError,
    ValidationError,
)

CONTACT = KeyContactCreate(name="Asha Rao", legal_name="Acme Traders Pvt Ltd", mobile="9876543210")
STORED = {
    "customerId": "CUST000123",
    "id": 123,
    "legalName": "Acme Traders Pvt Ltd",
    "uniqueRefNo": "ERP-0000001",
    "active": True,
    "createdOn": "2024-10-10T08:34:46Z",
    "netAmount": 1250.5,
    "customerKeyContacts": [
        {"name": "Asha Rao", "mobile": "9876543210", "mail_enabled": True, "deleted": "false"}
    ],
}


def ok(payload: Any) -> dict[str, Any]:
    return {
        "errorResponse": None,
        "payload": payload,
        "response_code": 0,
        "response_message": "Customer created",
    }


def sent_json(transport: FakeTransport) -> list[Any]:
    return [json.loads(sent.body or b"") for sent in transport.sent]


# --------------------------------------------------------------------------- create


async def test_create_sends_wire_json_without_unset_fields(
    client: EnkashClient, transport: FakeTransport
) -> None:
    new = CustomerCreate(
        legal_name="Acme Traders Pvt Ltd",
        customer_key_contacts=[CONTACT],
        unique_ref_no="ERP-0000001",
        pin_code="560001",
    )
    transport.answer(CREATE_PATH, reply(ok(STORED)))
    await client.customers.create(new)
    assert sent_json(transport) == [
        {
            "legalName": "Acme Traders Pvt Ltd",
            "customerKeyContacts": [
                {
                    "name": "Asha Rao",
                    "legalName": "Acme Traders Pvt Ltd",
                    "mobile": "9876543210",
                    "deleted": False,
                }
            ],
            "uniqueRefNo": "ERP-0000001",
            "pinCode": "560001",
        }
    ]


async def test_create_sends_nested_reminders_and_snake_case_flags(
    client: EnkashClient, transport: FakeTransport
) -> None:
    contact = KeyContactCreate(
        name="Asha Rao",
        legal_name="Acme Traders Pvt Ltd",
        mobile="9876543210",
        sms_enabled=True,
    )
    reminder = ReminderCreate(reminder_type=ReminderType.ONCE, reminder_time=dt.time(9, 30))
    new = CustomerCreate(
        legal_name="Acme", customer_key_contacts=[contact], customer_reminders=[reminder]
    )
    transport.answer(CREATE_PATH, reply(ok(STORED)))
    await client.customers.create(new)
    (body,) = sent_json(transport)
    assert body["customerKeyContacts"][0]["sms_enabled"] is True
    assert body["customerReminders"] == [{"reminderTime": "09:30", "reminderType": "ONCE"}]


async def test_create_returns_the_customer_enkash_stored(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE_PATH, reply(ok(STORED)))
    created = await client.customers.create(
        CustomerCreate(legal_name="Acme Traders Pvt Ltd", customer_key_contacts=[CONTACT])
    )
    assert isinstance(created, Customer)
    assert (created.customer_id, created.id, created.unique_ref_no) == (
        "CUST000123",
        123,
        "ERP-0000001",
    )
    assert created.created_on == dt.datetime(2024, 10, 10, 8, 34, 46, tzinfo=dt.timezone.utc)
    assert created.net_amount == Decimal("1250.5")
    assert created.customer_key_contacts[0].mail_enabled is True


@pytest.mark.parametrize(
    "argument",
    [
        {"legalName": "Acme", "customerKeyContacts": []},
        None,
        "Acme",
        Customer(legal_name="Acme"),
    ],
    ids=["dict", "none", "str", "reply-model"],
)
async def test_create_refuses_anything_but_a_customer_create_before_sending(
    client: EnkashClient, transport: FakeTransport, argument: Any
) -> None:
    transport.answer(CREATE_PATH, reply(ok(STORED)))
    with pytest.raises(ValidationError) as info:
        await client.customers.create(argument)
    assert info.value.fields == ("customer",)
    assert transport.sent == []


async def test_create_200_with_validation_error_raises_bad_request_with_sub_errors(
    client: EnkashClient, transport: FakeTransport
) -> None:
    subs = [
        {"object": "customerCreateDTO", "field": "panOrGstin", "message": "invalid PAN"},
        {"object": "customerCreateDTO", "field": "mobile", "message": "invalid mobile"},
    ]
    rejected = {
        "errorResponse": {
            "errorType": "VALIDATION_ERROR",
            "errorMessage": "Validation failed",
            "apiSubErrors": subs,
            "requestId": "srv-77",
        },
        "payload": None,
        "response_code": 400,
    }
    transport.answer(CREATE_PATH, reply(rejected))
    with pytest.raises(BadRequestError) as info:
        await client.customers.create(
            CustomerCreate(legal_name="Acme", customer_key_contacts=[CONTACT])
        )
    error = info.value
    assert (error.status, error.error_type, error.request_id) == (200, "VALIDATION_ERROR", "srv-77")
    assert list(error.sub_errors) == subs
    assert "panOrGstin" in str(error)
    assert "invalid mobile" in str(error)


@pytest.mark.parametrize("payload", [None, [1, 2], "created"], ids=["none", "list", "str"])
async def test_create_success_without_a_readable_customer_is_ambiguous_without_a_ref(
    client: EnkashClient, transport: FakeTransport, payload: Any
) -> None:
    # A 2xx the client cannot read most likely did create the customer: never resend blind.
    transport.answer(CREATE_PATH, reply(ok(payload)))
    with pytest.raises(AmbiguousCreateError) as info:
        await client.customers.create(
            CustomerCreate(legal_name="Acme", customer_key_contacts=[CONTACT])
        )
    assert isinstance(info.value.cause, UnexpectedResponseError)
    assert "unique_ref_no" in str(info.value)


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"token": "t", "credentials": PasswordCredentials("id", "secret", "user", "pw")},
    ],
    ids=["neither", "both"],
)
def test_client_needs_exactly_one_of_token_and_credentials(auth: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EnkashClient(BASE, **auth)


def test_client_repr_shows_base_url_and_auth_kind() -> None:
    text = repr(EnkashClient(BASE, token="t"))
    assert text.startswith("EnkashClient(")
    assert BASE in text
    assert "StaticToken" in text


def test_client_uses_its_retry_policy_by_default() -> None:
    policy = RetryPolicy(max_attempts=2)
    assert EnkashClient(BASE, token="t", retry=policy).retry is policy
    assert EnkashClient(BASE, token="t").retry == RetryPolicy()
