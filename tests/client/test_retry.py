"""Which failures are retried, how long the client waits, and when it gives up.

No test sleeps: every policy gets a fake ``sleep`` (and, for deadlines, a fake ``clock``).
The client talks to a scripted transport: these are tests of the retry layer, not of
aiohttp (transport/test_transport.py covers how aiohttp's failures are translated).
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
from _support import (
    CREATE_PATH,
    SEARCH_PATH,
    FakeTime,
    FakeTransport,
    Sent,
    failed,
    fake_client,
    ok,
    reply,
)

import enkash_async._retry
from enkash_async import (
    AmbiguousCreateError,
    APIError,
    BadRequestError,
    ConnectError,
    Customer,
    CustomerCreate,
    EnkashClient,
    KeyContactCreate,
    RateLimitError,
    RequestTimeoutError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    TransportError,
)
from enkash_async._retry import is_retryable

SEARCH = SEARCH_PATH
CREATE = CREATE_PATH


def customer(i: int) -> dict[str, Any]:
    return {"customerId": f"C{i:07d}", "id": i, "legalName": f"Company {i}"}


PAGE = reply(ok({"data": [customer(1), customer(2)], "recordsCount": 2}))
NEW = CustomerCreate(
    legal_name="Acme Traders Pvt Ltd",
    customer_key_contacts=[
        KeyContactCreate(name="Asha Rao", legal_name="Acme Traders Pvt Ltd", mobile="9876543210")
    ],
    unique_ref_no="ERP-0000001",
)
# Without a unique_ref_no an ambiguous create cannot be reconciled: it is raised unsent.
NO_REF = attrs.evolve(NEW, unique_ref_no=None)


def error(status: int, message: str = "failed", **headers: str) -> Any:
    return reply(
        failed(message), status, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


@pytest.fixture
def client_options(fake: FakeTime) -> dict[str, Any]:
    return {"policy": RetryPolicy(sleep=fake.sleep)}  # time passes, nothing waits


async def search(client: EnkashClient, **kwargs: Any) -> list[Customer]:
    return await client.customers.search(page_size=10, **kwargs).collect()


# What the transport raises for each way a request can fail below HTTP.
def refused() -> Exception:
    return ConnectError("could not connect to EnKash: refused")


def connect_timeout() -> Exception:
    return ConnectError("connecting to EnKash timed out")


def read_timeout() -> Exception:
    return RequestTimeoutError("no complete reply within 60s")


def disconnected() -> Exception:
    return TransportError("connection failed while talking to EnKash: ServerDisconnectedError")


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_search_is_retried_on_retryable_status(
    client: EnkashClient, fake: FakeTime, status: int, transport: FakeTransport
) -> None:
    transport.answer(SEARCH, error(status))
    transport.answer(SEARCH, PAGE)
    found = await search(client)
    assert [c.customer_id for c in found] == ["C0000001", "C0000002"]
    assert len(transport.sent) == 2
    assert len(fake.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_search_is_not_retried_on_client_error_status(
    client: EnkashClient, fake: FakeTime, status: int, transport: FakeTransport
) -> None:
    transport.answer(SEARCH, error(status))
    transport.answer(SEARCH, PAGE)
    with pytest.raises(APIError) as info:
        await search(client)
    assert info.value.status == status
    assert len(transport.sent) == 1
    assert fake.sleeps == []


@pytest.mark.parametrize(
    "make_error",
    [
        refused,
        connect_timeout,
        read_timeout,
        disconnected,
    ],
    ids=["refused", "connect-timeout", "read-timeout", "disconnected"],
)
async def test_search_is_retried_on_transport_error(
    client: EnkashClient, make_error: Callable[[], Exception], transport: FakeTransport
) -> None:
    transport.answer(SEARCH, make_error())
    transport.answer(SEARCH, PAGE)
    assert len(await search(client)) == 2
    assert len(transport.sent) == 2


async def test_search_is_retried_on_disconnect_while_reading_the_body(
    client: EnkashClient,
    transport: FakeTransport,
) -> None:
    transport.answer(SEARCH, TransportError("Response payload is not completed"))
    transport.answer(SEARCH, PAGE)
    assert len(await search(client)) == 2
    assert len(transport.sent) == 2


async def test_search_gives_up_after_four_attempts_by_default(
    client: EnkashClient, fake: FakeTime, transport: FakeTransport
) -> None:
    transport.answer(SEARCH, error(503), repeat=True)
    with pytest.raises(ServerError):
        await search(client)
    assert len(transport.sent) == RetryPolicy().max_attempts == 4
    assert len(fake.sleeps) == 3


async def test_search_raises_the_last_error_seen(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(SEARCH, error(503, "first"))
    transport.answer(SEARCH, disconnected())
    transport.answer(SEARCH, error(502, "second"))
    transport.answer(SEARCH, error(429, "last"))
    with pytest.raises(RateLimitError) as info:
        await search(client)
    assert info.value.api_message == "last"


# --------------------------------------------------------------------------- create


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_create_is_not_resent_on_server_error(
    client: EnkashClient, fake: FakeTime, status: int, transport: FakeTransport
) -> None:
    # Without a unique_ref_no the outcome cannot be checked, so it is reported, not resent.
    transport.answer(CREATE, error(status))
    transport.answer(CREATE, reply(ok(customer(1))))
    with pytest.raises(AmbiguousCreateError) as info:
        await client.customers.create(NO_REF)
    assert isinstance(info.value.cause, ServerError)
    assert len(transport.sent) == 1
    assert fake.sleeps == []


async def test_create_is_not_resent_on_read_timeout(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(CREATE, read_timeout())
    transport.answer(CREATE, reply(ok(customer(1))))
    with pytest.raises(AmbiguousCreateError) as info:
        await client.customers.create(NO_REF)
    assert isinstance(info.value.cause, RequestTimeoutError)
    assert len(transport.sent) == 1


async def test_create_is_not_resent_on_disconnect_while_reading_the_body(
    client: EnkashClient,
    transport: FakeTransport,
) -> None:
    transport.answer(CREATE, TransportError("Response payload is not completed"))
    transport.answer(CREATE, reply(ok(customer(1))))
    with pytest.raises(AmbiguousCreateError) as info:
        await client.customers.create(NO_REF)
    assert isinstance(info.value.cause, TransportError)
    assert len(transport.sent) == 1


@pytest.mark.parametrize("make_error", [refused, connect_timeout], ids=["refused", "timeout"])
async def test_create_is_retried_when_it_never_reached_enkash(
    client: EnkashClient, make_error: Callable[[], Exception], transport: FakeTransport
) -> None:
    transport.answer(CREATE, make_error())
    transport.answer(CREATE, reply(ok(customer(9))))
    created = await client.customers.create(NEW)
    assert created.customer_id == "C0000009"
    assert len(transport.sent) == 2


@pytest.mark.parametrize("status", [429, 503])
async def test_create_is_retried_when_refused_unprocessed(
    client: EnkashClient, status: int, transport: FakeTransport
) -> None:
    transport.answer(CREATE, error(status))
    transport.answer(CREATE, reply(ok(customer(9))))
    created = await client.customers.create(NEW)
    assert created.customer_id == "C0000009"
    assert len(transport.sent) == 2


async def test_create_is_not_retried_on_validation_error(
    client: EnkashClient, transport: FakeTransport
) -> None:
    refusal = {"errorResponse": {"errorType": "VALIDATION_ERROR", "errorMessage": "bad"}}
    transport.answer(CREATE, reply(refusal), repeat=True)
    with pytest.raises(BadRequestError):
        await client.customers.create(NEW)
    assert len(transport.sent) == 1


async def test_a_call_that_succeeds_at_once_never_enters_the_retry_loop(
    client: EnkashClient, transport: FakeTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[object] = []
    real = enkash_async._retry._wait_and_retry

    async def counting(*args: Any, **kwargs: Any) -> Any:
        entered.append(args[0])
        return await real(*args, **kwargs)

    monkeypatch.setattr(enkash_async._retry, "_wait_and_retry", counting)
    transport.answer(CREATE, reply(ok(customer(9))))
    await client.customers.create(NEW)
    assert entered == []
    transport.answer(CREATE, error(503), reply(ok(customer(9))))
    await client.customers.create(NEW)
    assert len(entered) == 1  # the loop is the one a retry goes through


def test_connect_error_is_retryable_for_create_but_read_timeout_is_not() -> None:
    policy = RetryPolicy()
    assert is_retryable(ConnectError("refused"), policy, idempotent=False)
    assert not is_retryable(RequestTimeoutError("slow"), policy, idempotent=False)
    assert is_retryable(RequestTimeoutError("slow"), policy, idempotent=True)


# --------------------------------------------------------------------------- waits


@pytest.fixture
def jitter(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Make the jitter pick the top of its range, recording every range drawn from."""
    ranges: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        ranges.append((low, high))
        return high

    monkeypatch.setattr(enkash_async._retry, "random", SimpleNamespace(uniform=uniform))
    return ranges


async def test_backoff_grows_exponentially_with_full_jitter_up_to_a_cap(
    fake: FakeTime, jitter: list[tuple[float, float]], transport: FakeTransport
) -> None:
    policy = RetryPolicy(
        max_attempts=6, initial_backoff=0.25, multiplier=3.0, max_backoff=5.0, sleep=fake.sleep
    )
    async with fake_client(transport, policy=policy) as client:
        transport.answer(SEARCH, error(500), repeat=True)
        with pytest.raises(ServerError):
            await search(client)
    ceilings = [min(5.0, 0.25 * 3.0**n) for n in range(5)]  # 0.25, 0.75, 2.25, 5 (capped), 5
    assert fake.sleeps == ceilings
    assert jitter[: len(ceilings)] == [(0.0, c) for c in ceilings]  # full jitter: 0 to ceiling


async def test_retry_after_seconds_is_honoured(
    client: EnkashClient,
    fake: FakeTime,
    jitter: list[tuple[float, float]],
    transport: FakeTransport,
) -> None:
    transport.answer(SEARCH, error(429, Retry_After="7"))
    transport.answer(SEARCH, PAGE)
    await search(client)
    assert fake.sleeps == [7.0]
    assert jitter == []


async def test_retry_after_http_date_is_honoured(
    client: EnkashClient, fake: FakeTime, transport: FakeTransport
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    transport.answer(SEARCH, error(503, Retry_After=when))
    transport.answer(SEARCH, PAGE)
    await search(client)
    assert fake.sleeps == [pytest.approx(30, abs=2)]


async def test_retry_after_is_capped(fake: FakeTime, transport: FakeTransport) -> None:
    policy = RetryPolicy(max_retry_after=12.0, sleep=fake.sleep)
    async with fake_client(transport, policy=policy) as client:
        transport.answer(SEARCH, error(429, Retry_After="3600"))
        transport.answer(SEARCH, PAGE)
        await search(client)
    assert fake.sleeps == [12.0]


async def test_deadline_stops_retries_before_running_past_it(
    fake: FakeTime, jitter: list[tuple[float, float]], transport: FakeTransport
) -> None:
    policy = RetryPolicy(
        max_attempts=50,
        initial_backoff=4.0,
        multiplier=1.0,
        deadline=10.0,
        sleep=fake.sleep,
        clock=fake.clock,
    )
    started: list[float] = []

    def record(sent: Sent) -> Any:
        started.append(fake.now)
        return error(503)

    async with fake_client(transport, policy=policy) as client:
        transport.answer(SEARCH, record, repeat=True)
        with pytest.raises(ServerError):
            await search(client)
    start = started[0]
    # Every 4 s wait fits while an attempt can still start before the 10 s deadline.
    assert [t - start for t in started] == [0.0, 4.0, 8.0]
    assert sum(fake.sleeps) < 10.0


# --------------------------------------------------------------------------- configuration


async def test_client_policy_applies_to_every_call(
    fake: FakeTime, transport: FakeTransport
) -> None:
    policy = RetryPolicy(max_attempts=2, sleep=fake.sleep)
    async with fake_client(transport, policy=policy) as client:
        transport.answer(SEARCH, error(500), repeat=True)
        transport.answer(CREATE, error(503), repeat=True)
        with pytest.raises(ServerError):
            await search(client)
        with pytest.raises(ServerError):
            await client.customers.create(NEW)
    assert (len(transport.to(SEARCH)), len(transport.to(CREATE))) == (2, 2)


async def test_per_call_policy_overrides_the_client_policy(
    client: EnkashClient, fake: FakeTime, transport: FakeTransport
) -> None:
    once = RetryPolicy(max_attempts=1, sleep=fake.sleep)
    six = RetryPolicy(max_attempts=6, sleep=fake.sleep)
    transport.answer(SEARCH, error(500), repeat=True)
    transport.answer(CREATE, error(503), repeat=True)
    with pytest.raises(ServerError):
        await search(client, retry=once)
    with pytest.raises(ServerError):
        await client.customers.create(NEW, retry=six)
    assert (len(transport.to(SEARCH)), len(transport.to(CREATE))) == (1, 6)


async def test_policy_none_never_retries(fake: FakeTime, transport: FakeTransport) -> None:
    async with fake_client(transport, policy=RetryPolicy.none()) as client:
        transport.answer(SEARCH, error(503), repeat=True)
        with pytest.raises(ServerError):
            await search(client)
    assert len(transport.sent) == 1


def test_max_attempts_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# --------------------------------------------------------------------------- observing


async def test_each_retry_is_logged_at_info_as_attempt_n_of_max(
    client: EnkashClient, caplog: pytest.LogCaptureFixture, transport: FakeTransport
) -> None:
    caplog.set_level(logging.INFO, logger="enkash_async")
    transport.answer(SEARCH, error(502), repeat=True)
    with pytest.raises(ServerError):
        await search(client)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.INFO] * 3
    for n, record in enumerate(retries, start=1):
        assert f"attempt {n} of 4" in record.getMessage()


async def test_on_retry_receives_a_retry_event(fake: FakeTime, transport: FakeTransport) -> None:
    events: list[RetryEvent] = []
    policy = RetryPolicy(max_attempts=3, sleep=fake.sleep, on_retry=events.append)
    async with fake_client(transport, policy=policy) as client:
        transport.answer(SEARCH, error(503))
        transport.answer(SEARCH, error(429, Retry_After="2"))
        transport.answer(SEARCH, PAGE)
        await search(client)
    assert [(e.attempt, e.max_attempts) for e in events] == [(1, 3), (2, 3)]
    assert [type(e.error) for e in events] == [ServerError, RateLimitError]
    assert [e.wait for e in events] == fake.sleeps
    assert events[1].wait == 2.0
    assert all("search" in e.operation for e in events)


async def test_client_stats_count_requests_and_retries(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(SEARCH, error(503))
    transport.answer(SEARCH, error(503))
    transport.answer(SEARCH, PAGE)
    await search(client)
    assert (client.stats.requests, client.stats.retries) == (3, 2)


# --------------------------------------------------------------------------- one budget per call


async def test_one_create_sends_at_most_max_attempts_creates_and_as_many_lookups(
    fake: FakeTime, transport: FakeTransport
) -> None:
    # Each round: three refusals for load (retried at once), then a failure that may have
    # reached EnKash (looked up, absent, sent again). Rounds must not each get a fresh
    # budget of max_attempts, or one create sends max_attempts² requests.
    round_ = [error(503), error(503), error(503), error(500)]
    transport.answer(CREATE, *(round_ * 10))
    transport.answer(SEARCH, reply(ok({"data": [], "recordsCount": 0})), repeat=True)
    policy = RetryPolicy(sleep=fake.sleep, clock=fake.clock)
    async with fake_client(transport, policy=policy) as client:
        with pytest.raises(ServerError):
            await client.customers.create(NEW)
    assert len(transport.to(CREATE)) <= policy.max_attempts
    assert len(transport.to(SEARCH)) <= policy.max_attempts
    assert len(transport.sent) <= 2 * policy.max_attempts == 8


async def test_a_create_failing_ambiguously_every_time_sends_four_creates_and_four_lookups(
    fake: FakeTime, transport: FakeTransport
) -> None:
    transport.answer(CREATE, error(500), repeat=True)
    transport.answer(SEARCH, reply(ok({"data": [], "recordsCount": 0})), repeat=True)
    async with fake_client(transport, policy=RetryPolicy(sleep=fake.sleep)) as client:
        with pytest.raises(ServerError):
            await client.customers.create(NEW)
    assert (len(transport.to(CREATE)), len(transport.to(SEARCH))) == (4, 4)


async def test_an_ambiguous_create_is_looked_up_only_after_the_settle_time(
    fake: FakeTime, transport: FakeTransport
) -> None:
    transport.answer(CREATE, error(500))
    transport.answer(
        SEARCH, reply(ok({"data": [customer(7) | {"uniqueRefNo": NEW.unique_ref_no}]}))
    )
    policy = RetryPolicy(sleep=fake.sleep, settle_time=2.5)
    async with fake_client(transport, policy=policy) as client:
        found = await client.customers.create(NEW)
    assert found.customer_id == "C0000007"
    assert fake.sleeps and fake.sleeps[0] >= 2.5
