"""Records shaped like EnKash's own examples, and every shape the liberal contract
accepts, read on the fast path: the same values as the liberal reader, field by field,
never by reading the whole record liberally."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from _customer_wire import customer_from_wire
from _seed_records import QUIRKS, example_records, quirky_record, search_body, seed_record
from _seeds import fixture
from aiohttp import web

from enkash_async import EnkashClient
from enkash_async._wire import _stream, read_record_reply, read_search_reply, record_reader
from enkash_async.errors import UnexpectedResponseError
from enkash_async.models import Customer, CustomerCreate, KeyContactCreate, ReminderType


@pytest.fixture
def whole_record_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The raw records read whole by the liberal reader (the per-record fallback)."""
    seen: list[Any] = []
    liberal = _stream.record_from_wire

    def counted(record: Any, *args: Any) -> Any:
        seen.append(record)
        return liberal(record, *args)

    monkeypatch.setattr(_stream, "record_from_wire", counted)
    return seen


def raw_records(records: list[dict[str, Any]]) -> list[msgspec.Raw]:
    data = read_search_reply(search_body(records))["payload"]["data"]
    assert all(isinstance(raw, msgspec.Raw) for raw in data)
    return list(data)


def liberal(record: dict[str, Any]) -> Customer:
    return customer_from_wire(json.loads(json.dumps(record)))


def test_both_seed_examples_read_on_the_fast_path_as_the_liberal_reader_reads_them(
    whole_record_reads: list[Any],
) -> None:
    records = [seed_record(number) for number in range(4)]
    read = record_reader(Customer)
    assert [read(raw) for raw in raw_records(records)] == [liberal(r) for r in records]
    assert whole_record_reads == []


def test_the_seed_example_reads_as_documented() -> None:
    (example, _) = example_records()
    (customer,) = map(record_reader(Customer), raw_records([example]))
    assert customer.created_on == dt.datetime(2019, 8, 24, 14, 15, 22, tzinfo=dt.timezone.utc)
    assert customer.customer_key_contacts[0].deleted is None  # "string": no flag
    assert customer.customer_reminders[0].reminder_time == "HH:mm"
    assert customer.customer_reminders[0].reminder_type is ReminderType.ONCE


@pytest.mark.parametrize("quirk", sorted(QUIRKS))
def test_each_documented_shape_reads_on_the_fast_path_as_the_liberal_reader_reads_it(
    quirk: str, whole_record_reads: list[Any]
) -> None:
    records = [quirky_record(number, quirk) for number in range(3)]
    read = record_reader(Customer)
    assert [read(raw) for raw in raw_records(records)] == [liberal(r) for r in records]
    assert whole_record_reads == []


def _contact(customer: Customer) -> Any:
    return customer.customer_key_contacts[0]


def _reminder(customer: Customer) -> Any:
    return customer.customer_reminders[0]


@pytest.mark.parametrize(
    ("quirk", "value_of", "expected"),
    [
        ("deleted 'false'", lambda c: _contact(c).deleted, False),
        ("deleted 'true'", lambda c: _contact(c).deleted, True),
        ("reminderTime 'HH:mm' placeholder", lambda c: _reminder(c).reminder_time, "HH:mm"),
        ("reminderTime '10:30'", lambda c: _reminder(c).reminder_time, dt.time(10, 30)),
        ("reminderTime '10:30:00'", lambda c: _reminder(c).reminder_time, dt.time(10, 30)),
        (
            "reminderTime '10:30:00.123'",
            lambda c: _reminder(c).reminder_time,
            dt.time(10, 30, 0, 123000),
        ),
        ("reminderTime [10, 30]", lambda c: _reminder(c).reminder_time, dt.time(10, 30)),
        ("reminderTime [10, 30, 0]", lambda c: _reminder(c).reminder_time, dt.time(10, 30)),
        ("mobile as a number", lambda c: _contact(c).mobile, "9876543210"),
        (
            "pinCode and accountNumber as numbers",
            lambda c: (c.pin_code, c.account_number),
            ("560001", "12345678901"),
        ),
        ("stage as a number", lambda c: _reminder(c).stage, "1"),
        (
            "every field null",
            lambda c: (c.legal_name, c.branch_codes, _contact(c).deleted, _reminder(c).stage),
            (None, [], None, None),
        ),
        ("null items in lists of strings", lambda c: (c.branch_codes, c.warnings), (["BR001"], [])),
        (
            "null lists",
            lambda c: (c.branch_codes, c.customer_key_contacts, c.customer_reminders),
            ([], [], []),
        ),
        ("unknown reminderType", lambda c: _reminder(c).reminder_type, "WEEKLY"),
        ("reminderType as a number", lambda c: _reminder(c).reminder_type, "2"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_documented_shape_reads_as_the_value_it_stands_for(
    quirk: str, value_of: Callable[[Customer], Any], expected: Any
) -> None:
    (raw,) = raw_records([quirky_record(0, quirk)])
    assert value_of(record_reader(Customer)(raw)) == expected


def test_the_value_table_covers_every_documented_shape() -> None:
    params = test_each_documented_shape_reads_as_the_value_it_stands_for.pytestmark  # type: ignore[attr-defined]
    (parametrize,) = [mark for mark in params if mark.name == "parametrize"]
    assert {row[0] for row in parametrize.args[1]} == set(QUIRKS)


def test_a_field_that_held_another_shape_once_is_read_by_its_hook_from_then_on(
    whole_record_reads: list[Any],
) -> None:
    records = [
        quirky_record(0, "mobile as a number"),
        seed_record(1),
        quirky_record(2, "mobile as a number"),
        quirky_record(3, "pinCode and accountNumber as numbers"),
        seed_record(4),
    ]
    read = record_reader(Customer)
    assert [read(raw) for raw in raw_records(records)] == [liberal(r) for r in records]
    assert whole_record_reads == []


def test_a_record_with_several_odd_fields_reads_on_the_fast_path(
    whole_record_reads: list[Any],
) -> None:
    record = seed_record(0)
    for quirk in ("mobile as a number", "stage as a number", "null items in lists of strings"):
        QUIRKS[quirk](record)
    (raw,) = raw_records([record])
    assert record_reader(Customer)(raw) == liberal(record)
    assert whole_record_reads == []


def test_a_value_no_field_hook_reads_is_still_named_by_its_wire_path() -> None:
    read = record_reader(Customer)
    odd, unreadable = quirky_record(0, "mobile as a number"), seed_record(1)
    unreadable["customerKeyContacts"][0]["mobile"] = {"number": 1}
    first, second = raw_records([odd, unreadable])
    read(first)  # mobile now read by its hook
    with pytest.raises(UnexpectedResponseError, match=r"\$\.customerKeyContacts\[0\]\.mobile"):
        read(second)


def test_a_create_reply_shaped_like_the_seed_reads_on_the_fast_path(
    whole_record_reads: list[Any],
) -> None:
    record = seed_record(1)
    body = json.dumps({"errorResponse": None, "payload": record, "response_code": 0}).encode()
    payload = read_record_reply(body)["payload"]
    assert isinstance(payload, msgspec.Raw)
    assert record_reader(Customer)(payload) == liberal(record)
    assert whole_record_reads == []


# --------------------------------------------------------------------------- through the client


@pytest.fixture
async def seed_enkash() -> AsyncIterator[str]:
    """A server on 127.0.0.1 answering a create with the seed's createCustomer 200 example
    (its placeholder errorResponse, which reads as a failure, made null) and a search with
    a page of seed records, one per documented quirk."""
    created = fixture("create_customer.reply.json")
    created["errorResponse"] = None
    page = search_body([quirky_record(number, quirk) for number, quirk in enumerate(QUIRKS)])

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        body = page if request.path.endswith("/search") else json.dumps(created).encode()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_the_client_reads_the_seeds_create_reply_on_the_fast_path(
    seed_enkash: str, whole_record_reads: list[Any]
) -> None:
    contact = KeyContactCreate(name="Asha", legal_name="Asha Rao", mobile="9876543210")
    request = CustomerCreate(legal_name="Acme", customer_key_contacts=[contact])
    async with EnkashClient(seed_enkash, token="t", allow_insecure_http=True) as client:
        customer = await client.customers.create(request)
    assert customer == liberal(fixture("create_customer.reply.json")["payload"])
    assert customer.customer_reminders[0].reminder_time == "HH:mm"
    assert whole_record_reads == []


async def test_the_client_streams_seed_records_with_every_quirk_on_the_fast_path(
    seed_enkash: str, whole_record_reads: list[Any]
) -> None:
    expected = [liberal(quirky_record(number, quirk)) for number, quirk in enumerate(QUIRKS)]
    async with EnkashClient(seed_enkash, token="t", allow_insecure_http=True) as client:
        customers = [c async for c in client.customers.search(max_items=len(QUIRKS))]
    assert customers == expected
    assert whole_record_reads == []
