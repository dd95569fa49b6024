"""Exactly-once create: an ambiguous failure is reconciled by ``unique_ref_no``, never resent blind.

EnKash has no idempotency key. When a create fails after it may have reached EnKash
(a read timeout, 500/502/504, a SYSTEM_ERROR envelope, a disconnect after sending, an
unreadable 2xx), a customer with ``unique_ref_no`` is looked up: found, it is returned
(``reconciled``); not found, it is sent again. Without a ref the outcome is unknown and
``AmbiguousCreateError`` says so. Failures that surely left EnKash untouched are not
reconciled at all.

Unit tests script replies with a fake transport; the integration tests at the end run the real
faults (the customer stored, then the reply broken) against the fake EnKash server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from _support import CREATE_PATH, SEARCH_PATH, FakeTransport, fake_client, reply

from enkash_async import (
    AmbiguousCreateError,
    BadRequestError,
    ConnectError,
    CreateResult,
    CustomerCreate,
    EnkashClient,
    EnkashError,
    KeyContactCreate,
    PaginationError,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    Timeouts,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from enkash_async.testing import FakeEnkash, Fault

CREATE, SEARCH = CREATE_PATH, SEARCH_PATH
REF = "ERP-0000042"


def new_customer(ref: str | None = REF, name: str = "Acme Traders Pvt Ltd") -> CustomerCreate:
    return CustomerCreate(
        legal_name=name,
        customer_key_contacts=[
            KeyContactCreate(name="Asha Rao", legal_name=name, mobile="9876543210", deleted=False)
        ],
        unique_ref_no=ref,
    )


def stored(customer_id: str = "CUST0000042", ref: str | None = REF) -> dict[str, Any]:
    return {"customerId": customer_id, "id": 42, "legalName": "Acme", "uniqueRefNo": ref}


def ok(payload: Any) -> dict[str, Any]:
    return {"errorResponse": None, "payload": payload, "response_code": 0}


def found(*customers: dict[str, Any], total: int | None = None) -> dict[str, Any]:
    count = len(customers) if total is None else total
    return ok({"data": list(customers), "recordsCount": count})


def failed(error_type: str = "SYSTEM_ERROR", code: int = 500) -> dict[str, Any]:
    return {
        "errorResponse": {"errorType": error_type, "errorMessage": "it failed"},
        "payload": None,
        "response_code": code,
    }


def sent(transport: FakeTransport, path: str) -> list[Any]:
    """The JSON bodies sent to ``path`` (``/api/v0/customer`` or ``.../search``), in order."""
    return [json.loads(request.body or b"") for request in transport.to(path)]


def creates(transport: FakeTransport) -> list[Any]:
    return sent(transport, CREATE_PATH)


def lookups(transport: FakeTransport) -> list[Any]:
    return sent(transport, SEARCH_PATH)


# Each way a create can fail after the request may have reached EnKash (failures below
# HTTP as the aiohttp transport reports them).
AMBIGUOUS: dict[str, Callable[[FakeTransport], object]] = {
    "http_500": lambda t: t.answer(CREATE, reply(failed(), 500)),
    "http_502": lambda t: t.answer(CREATE, reply(failed(), 502)),
    "http_504": lambda t: t.answer(CREATE, reply(failed(), 504)),
    "http_502_html": lambda t: t.answer(
        CREATE, reply(b"<html><body>502 Bad Gateway</body></html>", 502)
    ),
    "system_error_on_http_200": lambda t: t.answer(CREATE, reply(failed())),
    "read_timeout": lambda t: t.answer(CREATE, RequestTimeoutError("no complete reply within 60s")),
    "disconnect_after_sending": lambda t: t.answer(
        CREATE, TransportError("connection failed while talking to EnKash: ServerDisconnectedError")
    ),
    "body_cut_off": lambda t: t.answer(
        CREATE, TransportError("connection failed while talking to EnKash: ClientPayloadError")
    ),
    "unreadable_2xx": lambda t: t.answer(CREATE, reply(b'{"errorResponse":null,"pay')),
    "2xx_without_payload": lambda t: t.answer(CREATE, reply(ok(None))),
}


# --------------------------------------------------------------------------- reconciled


@pytest.mark.parametrize("failure", AMBIGUOUS)
async def test_ambiguous_failure_with_ref_found_by_lookup_returns_it_without_resending(
    client: EnkashClient, failure: str, transport: FakeTransport
) -> None:
    AMBIGUOUS[failure](transport)
    transport.answer(SEARCH, reply(found(stored())))
    customer = await client.customers.create(new_customer())
    assert len(creates(transport)) == 1
    assert lookups(transport) == [{"uniqueRefNo": REF}]
    assert customer.customer_id == "CUST0000042"
    assert client.stats.reconciled == 1


@pytest.mark.parametrize("failure", AMBIGUOUS)
async def test_ambiguous_failure_with_ref_not_found_is_sent_again(
    client: EnkashClient, failure: str, transport: FakeTransport
) -> None:
    AMBIGUOUS[failure](transport)
    transport.answer(SEARCH, reply(found()))
    transport.answer(CREATE, reply(ok(stored("CUST0000043"))))
    customer = await client.customers.create(new_customer())
    bodies = creates(transport)
    assert len(lookups(transport)) == 1
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]
    assert customer.customer_id == "CUST0000043"
    assert client.stats.reconciled == 0


async def test_create_many_marks_a_customer_found_by_lookup_as_reconciled(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed(), 504))
    transport.answer(SEARCH, reply(found(stored())))
    [result] = [r async for r in client.customers.create_many([new_customer()])]
    assert result.ok and result.reconciled and result.error is None
    assert result.customer is not None and result.customer.customer_id == "CUST0000042"
    assert result.attempts == 1


async def test_create_many_marks_a_resent_customer_as_not_reconciled(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed(), 500))
    transport.answer(SEARCH, reply(found()))
    transport.answer(CREATE, reply(ok(stored())))
    [result] = [r async for r in client.customers.create_many([new_customer()])]
    assert result.ok and not result.reconciled
    assert result.attempts == 2


async def test_lookup_match_must_have_exactly_the_ref(
    client: EnkashClient, transport: FakeTransport
) -> None:
    # A loosely applied filter (a prefix match, or none at all) returns other customers:
    # none of them may be taken for this one, or the create would be silently lost.
    others = [stored(f"CUST{i}", ref=f"{REF}{i}") for i in range(3)]
    transport.answer(CREATE, reply(failed(), 500))
    transport.answer(SEARCH, reply(found(*others)))
    transport.answer(CREATE, reply(ok(stored("CUST0000043"))))
    customer = await client.customers.create(new_customer())
    assert len(creates(transport)) == 2
    assert customer.customer_id == "CUST0000043"


async def test_lookup_picks_the_exact_ref_among_loose_matches(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed(), 500))
    transport.answer(SEARCH, reply(found(stored("CUST1", ref=REF + "7"), stored("CUST2"))))
    customer = await client.customers.create(new_customer())
    assert len(creates(transport)) == 1
    assert customer.customer_id == "CUST2"


async def test_lookup_too_loose_to_tell_raises_ambiguous_and_does_not_resend(
    client: EnkashClient, transport: FakeTransport
) -> None:
    # More matches than one lookup reads, none of them exact: the customer may be further on.
    others = [stored(f"CUST{i}", ref=f"OTHER-{i}") for i in range(20)]
    transport.answer(CREATE, reply(failed(), 500))
    transport.answer(SEARCH, reply(found(*others, total=50_000)))
    with pytest.raises(AmbiguousCreateError, match="may or may not exist"):
        await client.customers.create(new_customer())
    assert len(creates(transport)) == 1


async def test_lookup_short_of_the_count_it_reports_raises_ambiguous(
    client: EnkashClient, transport: FakeTransport
) -> None:
    # One match shown of five counted, not this customer: the others may include it.
    transport.answer(CREATE, reply(failed(), 500))
    transport.answer(SEARCH, reply(found(stored("CUST1", ref="OTHER-1"), total=5)))
    with pytest.raises(AmbiguousCreateError, match="may or may not exist"):
        await client.customers.create(new_customer())
    assert len(creates(transport)) == 1


async def test_lookup_that_fails_raises_ambiguous_with_the_create_failure_as_cause(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed(), 502))
    for _ in range(4):
        transport.answer(SEARCH, reply(failed(), 503))
    with pytest.raises(AmbiguousCreateError, match="looking it up failed") as info:
        await client.customers.create(new_customer())
    assert len(creates(transport)) == 1
    assert len(lookups(transport)) == 4  # the lookup is a search: retried like one
    assert isinstance(info.value.cause, ServerError) and info.value.cause.status == 502


async def test_create_failing_ambiguously_every_round_stops_after_max_attempts(
    client: EnkashClient, transport: FakeTransport
) -> None:
    for _ in range(4):
        transport.answer(CREATE, reply(failed(), 500))
        transport.answer(SEARCH, reply(found()))
    with pytest.raises(ServerError):
        await client.customers.create(new_customer())
    assert len(creates(transport)) == 4
    assert len(lookups(transport)) == 4


# --------------------------------------------------------------------------- no ref


@pytest.mark.parametrize("failure", AMBIGUOUS)
async def test_ambiguous_failure_without_ref_raises_ambiguous_and_is_not_resent(
    client: EnkashClient, failure: str, transport: FakeTransport
) -> None:
    AMBIGUOUS[failure](transport)
    with pytest.raises(AmbiguousCreateError) as info:
        await client.customers.create(new_customer(ref=None))
    assert len(creates(transport)) == 1
    assert lookups(transport) == []
    error = info.value
    assert isinstance(error, EnkashError)
    assert "may or may not exist" in str(error)  # the outcome is unknown ...
    assert "unique_ref_no" in str(error)  # ... and how to make creates safe
    assert error.cause is not None


async def test_create_many_reports_ambiguous_without_ref_in_the_result(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed(), 500))
    [result] = [r async for r in client.customers.create_many([new_customer(ref=None)])]
    assert len(creates(transport)) == 1
    assert not result.ok
    assert isinstance(result.error, AmbiguousCreateError)
    assert result.attempts == 1


async def test_require_unique_ref_refuses_inputs_without_a_ref_unsent(
    client: EnkashClient, transport: FakeTransport
) -> None:
    inputs = [new_customer("ERP-1"), new_customer(None), new_customer("ERP-3")]
    transport.answer(CREATE, reply(ok(stored("C1", "ERP-1"))))
    transport.answer(CREATE, reply(ok(stored("C3", "ERP-3"))))
    results = [r async for r in client.customers.create_many(inputs, require_unique_ref=True)]
    bodies = creates(transport)
    assert [b.get("uniqueRefNo") for b in bodies] == ["ERP-1", "ERP-3"]
    assert [r.ok for r in results] == [True, False, True]
    refused = results[1]
    assert isinstance(refused.error, ValidationError)
    assert refused.error.fields == ("unique_ref_no",)
    assert refused.attempts == 0
    assert refused.input is inputs[1]


# --------------------------------------------------------------------------- not ambiguous


async def test_bad_request_is_raised_without_lookup(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed("VALIDATION_ERROR", 400), 400))
    with pytest.raises(BadRequestError):
        await client.customers.create(new_customer())
    assert len(creates(transport)) == 1
    assert lookups(transport) == []


async def test_validation_error_in_a_200_envelope_is_raised_without_lookup(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed("VALIDATION_ERROR", 400)))
    with pytest.raises(BadRequestError):
        await client.customers.create(new_customer())
    assert lookups(transport) == []


async def test_a_4xx_is_not_ambiguous_whatever_error_type_it_carries(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed("SYSTEM_ERROR", 409), 409))
    with pytest.raises(ServerError) as info:
        await client.customers.create(new_customer())
    assert len(creates(transport)) == 1
    assert lookups(transport) == []
    assert info.value.status == 409


async def test_connect_error_after_retries_is_raised_without_lookup() -> None:
    transport = FakeTransport().answer(
        CREATE_PATH, ConnectError("could not connect to EnKash: refused"), repeat=True
    )
    async with fake_client(transport) as client:
        with pytest.raises(ConnectError):
            await client.customers.create(new_customer())
    assert len(transport.to(CREATE_PATH)) == 4  # never reached EnKash: safe to resend
    assert transport.to(SEARCH_PATH) == []


@pytest.mark.parametrize("status", [429, 503])
async def test_overload_after_retries_is_raised_without_lookup(
    client: EnkashClient, status: int, transport: FakeTransport
) -> None:
    for _ in range(4):
        transport.answer(CREATE, reply(failed("UNKNOWN_ERROR", status), status))
    with pytest.raises((RateLimitError, ServerError)) as info:
        await client.customers.create(new_customer())
    assert len(creates(transport)) == 4  # refused unprocessed: safe to resend
    assert lookups(transport) == []
    assert isinstance(info.value, RateLimitError if status == 429 else ServerError)


async def test_overload_then_success_is_created_once_without_lookup(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, reply(failed(), 503))
    transport.answer(CREATE, reply(ok(stored())))
    [result] = [r async for r in client.customers.create_many([new_customer()])]
    assert lookups(transport) == []
    assert result.ok and not result.reconciled and result.attempts == 2


# --------------------------------------------------------------------------- fake EnKash

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, max_retry_after=0.01)


@pytest.fixture
async def server() -> AsyncIterator[FakeEnkash]:
    async with FakeEnkash(seed=5) as s:
        yield s


@pytest.fixture
async def live(server: FakeEnkash) -> AsyncIterator[EnkashClient]:
    async with EnkashClient(server.url, token=server.token, retry=FAST) as c:
        yield c


async def create_one(client: EnkashClient, customer: CustomerCreate) -> CreateResult:
    [result] = [r async for r in client.customers.create_many([customer])]
    return result


COMMITTED_THEN_BROKEN = {
    "status_500": Fault.after_commit(status=500),
    "status_502_html": Fault.after_commit(status=502, html=True),
    "status_504": Fault.after_commit(status=504),
    "disconnect": Fault.after_commit(disconnect=True),
    "truncated": Fault.after_commit(truncated=True),
}


@pytest.mark.parametrize("fault", COMMITTED_THEN_BROKEN)
async def test_customer_stored_before_the_reply_broke_is_reconciled_not_duplicated(
    server: FakeEnkash, live: EnkashClient, fault: str
) -> None:
    server.inject(COMMITTED_THEN_BROKEN[fault], route="create", times=1)
    result = await create_one(live, new_customer())
    assert result.ok and result.reconciled
    [only] = server.find_by_unique_ref(REF)
    assert result.customer is not None and result.customer.customer_id == only["customerId"]
    assert server.stats.requests["create"] == 1


@pytest.mark.parametrize(
    "fault",
    [Fault.status(500), Fault.status(502), Fault.html(504), Fault.drop(), Fault.truncated()],
    ids=["500", "502", "504_html", "drop", "truncated"],
)
async def test_customer_not_stored_after_an_ambiguous_failure_is_resent_once(
    server: FakeEnkash, live: EnkashClient, fault: Fault
) -> None:
    server.inject(fault, route="create", times=1)
    result = await create_one(live, new_customer())
    assert result.ok and not result.reconciled
    assert len(server.find_by_unique_ref(REF)) == 1
    assert server.stats.requests["create"] == 2
    assert result.attempts == 2


async def test_read_timeout_after_the_customer_was_stored_is_reconciled(
    server: FakeEnkash,
) -> None:
    server.inject(Fault.after_commit(delay=0.6), route="create", times=1)
    async with EnkashClient(
        server.url, token=server.token, retry=FAST, timeouts=Timeouts(attempt=0.2)
    ) as client:
        result = await create_one(client, new_customer())
    assert result.ok and result.reconciled
    assert len(server.find_by_unique_ref(REF)) == 1


async def test_stored_then_broken_without_ref_is_ambiguous_and_stored_once(
    server: FakeEnkash, live: EnkashClient
) -> None:
    server.inject(Fault.after_commit(status=500), route="create", times=1)
    result = await create_one(live, new_customer(ref=None))
    assert isinstance(result.error, AmbiguousCreateError)
    assert isinstance(result.error.cause, ServerError)
    assert server.stats.created == 1
    assert server.stats.requests == {"create": 1}


@pytest.mark.parametrize(
    "fault, error",
    [
        (Fault.after_commit(disconnect=True), TransportError),
        (Fault.after_commit(truncated=True), UnexpectedResponseError),
    ],
    ids=["disconnect", "truncated"],
)
async def test_broken_reply_without_ref_names_its_cause(
    server: FakeEnkash, live: EnkashClient, fault: Fault, error: type[EnkashError]
) -> None:
    server.inject(fault, route="create", times=1)
    with pytest.raises(AmbiguousCreateError) as info:
        await live.customers.create(new_customer(ref=None))
    assert isinstance(info.value.cause, error)
    assert server.stats.created == 1


async def test_read_timeout_without_ref_is_ambiguous(server: FakeEnkash) -> None:
    server.inject(Fault.after_commit(delay=0.6), route="create", times=1)
    async with EnkashClient(
        server.url, token=server.token, retry=FAST, timeouts=Timeouts(attempt=0.2)
    ) as client:
        with pytest.raises(AmbiguousCreateError) as info:
            await client.customers.create(new_customer(ref=None))
    assert isinstance(info.value.cause, RequestTimeoutError)
    assert server.stats.requests == {"create": 1}


async def test_an_ambiguous_create_waits_before_looking_up_its_ref() -> None:
    # A create EnKash is still committing would be missed by an immediate lookup.
    lookups_at_each_wait: list[int] = []
    async with FakeEnkash(seed=5) as server:

        async def sleep(seconds: float) -> None:
            lookups_at_each_wait.append(server.stats.requests["search"])

        server.inject(Fault.after_commit(status=504), route="create", times=1)
        retry = RetryPolicy(sleep=sleep)
        async with EnkashClient(server.url, token=server.token, retry=retry) as client:
            customer = await client.customers.create(new_customer("ERP-WAIT-1"))
        assert customer.unique_ref_no == "ERP-WAIT-1"
        assert server.stats.requests["search"] == 1
    assert lookups_at_each_wait[0] == 0


# --------------------------------------------------------------------------- find_by_unique_ref


async def test_find_by_unique_ref_takes_only_an_exact_match_from_a_loose_filter() -> None:
    loose = found(stored("CUST1", ref="ERP-0000042-B"), stored("CUST2", ref=REF))
    transport = FakeTransport().answer(SEARCH_PATH, reply(loose))
    async with fake_client(transport) as client:
        customer = await client.customers.find_by_unique_ref(REF)
    assert customer is not None and customer.customer_id == "CUST2"


async def test_find_by_unique_ref_is_none_when_every_match_is_another_ref() -> None:
    transport = FakeTransport().answer(SEARCH_PATH, reply(found(stored("CUST1", ref="OTHER"))))
    async with fake_client(transport) as client:
        assert await client.customers.find_by_unique_ref(REF) is None


async def test_find_by_unique_ref_cannot_tell_when_more_matched_than_it_read() -> None:
    page = found(*[stored(f"C{i}", ref=f"OTHER-{i}") for i in range(20)], total=500)
    transport = FakeTransport().answer(SEARCH_PATH, reply(page))
    async with fake_client(transport) as client:
        with pytest.raises(PaginationError):
            await client.customers.find_by_unique_ref(REF)
