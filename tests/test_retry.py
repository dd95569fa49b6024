"""Which failures are retried, how long the client waits, and when it gives up.

No test sleeps: every policy gets a fake ``sleep`` (and, for deadlines, a fake ``clock``).
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import aioresponses.core as mock_core
import attrs
import pytest
from aioresponses import aioresponses

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
    RequestTimeout,
    RetryEvent,
    RetryPolicy,
    ServerError,
    TransportError,
)
from enkash_async._retry import is_retryable

BASE = "https://api.enkash.test"
SEARCH = re.compile(r"^https://api\.enkash\.test/api/v0/customer/search\?")
CREATE = f"{BASE}/api/v0/customer"
CONNECTION_KEY = aiohttp.client_reqrep.ConnectionKey(
    "api.enkash.test", 443, True, True, None, None, None
)


class FakeTime:
    """A ``sleep`` that only records, and a ``clock`` that the sleeps advance."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


_MockResponse: Any = getattr(mock_core, "ClientResponse")  # noqa: B009  (conftest's 3.14 shim)


class BodyCutResponse(_MockResponse):  # type: ignore[misc]
    """A reply whose connection drops after the headers, while the body is read."""

    async def read(self) -> bytes:
        raise aiohttp.ClientPayloadError("Response payload is not completed")


def ok(payload: Any) -> dict[str, Any]:
    return {"errorResponse": None, "payload": payload, "response_code": 0}


def failed(message: str = "failed") -> dict[str, Any]:
    return {"errorResponse": {"errorType": "SYSTEM_ERROR", "errorMessage": message}}


def customer(i: int) -> dict[str, Any]:
    return {"customerId": f"C{i:07d}", "id": i, "legalName": f"Company {i}"}


PAGE = ok({"data": [customer(1), customer(2)], "recordsCount": 2})
NEW = CustomerCreate(
    legal_name="Acme Traders Pvt Ltd",
    customer_key_contacts=[
        KeyContactCreate(name="Asha Rao", legal_name="Acme Traders Pvt Ltd", mobile="9876543210")
    ],
    unique_ref_no="ERP-0000001",
)
# Without a unique_ref_no an ambiguous create cannot be reconciled: it is raised unsent.
NO_REF = attrs.evolve(NEW, unique_ref_no=None)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def client(fake: FakeTime) -> AsyncIterator[EnkashClient]:
    async with EnkashClient(BASE, token="t", retry=RetryPolicy(sleep=fake.sleep)) as c:
        yield c


def count(m: aioresponses) -> int:
    return sum(len(calls) for calls in m.requests.values())


async def search(client: EnkashClient, **kwargs: Any) -> list[Customer]:
    return await client.customers.search(page_size=10, **kwargs).collect()


def refused() -> Exception:
    return aiohttp.ClientConnectorError(CONNECTION_KEY, ConnectionRefusedError(111, "refused"))


def dns_failure() -> Exception:
    return aiohttp.ClientConnectorDNSError(CONNECTION_KEY, OSError(-2, "Name not known"))


def connect_timeout() -> Exception:
    return aiohttp.ConnectionTimeoutError("Connection timeout")


# --------------------------------------------------------------------------- search


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_search_is_retried_on_retryable_status(
    client: EnkashClient, fake: FakeTime, status: int
) -> None:
    with aioresponses() as m:
        m.post(SEARCH, status=status, payload=failed())
        m.post(SEARCH, payload=PAGE)
        found = await search(client)
    assert [c.customer_id for c in found] == ["C0000001", "C0000002"]
    assert count(m) == 2
    assert len(fake.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_search_is_not_retried_on_client_error_status(
    client: EnkashClient, fake: FakeTime, status: int
) -> None:
    with aioresponses() as m:
        m.post(SEARCH, status=status, payload=failed())
        m.post(SEARCH, payload=PAGE)
        with pytest.raises(APIError) as info:
            await search(client)
    assert info.value.status == status
    assert count(m) == 1
    assert fake.sleeps == []


@pytest.mark.parametrize(
    "make_error",
    [
        refused,
        dns_failure,
        connect_timeout,
        lambda: TimeoutError(),
        lambda: aiohttp.ServerDisconnectedError(),
    ],
    ids=["refused", "dns", "connect-timeout", "read-timeout", "disconnected"],
)
async def test_search_is_retried_on_transport_error(
    client: EnkashClient, make_error: Callable[[], Exception]
) -> None:
    with aioresponses() as m:
        m.post(SEARCH, exception=make_error())
        m.post(SEARCH, payload=PAGE)
        assert len(await search(client)) == 2
    assert count(m) == 2


async def test_search_is_retried_on_disconnect_while_reading_the_body(
    client: EnkashClient,
) -> None:
    with aioresponses() as m:
        m.post(SEARCH, payload=PAGE, response_class=BodyCutResponse)
        m.post(SEARCH, payload=PAGE)
        assert len(await search(client)) == 2
    assert count(m) == 2


async def test_search_gives_up_after_four_attempts_by_default(
    client: EnkashClient, fake: FakeTime
) -> None:
    with aioresponses() as m:
        m.post(SEARCH, status=503, payload=failed(), repeat=True)
        with pytest.raises(ServerError):
            await search(client)
    assert count(m) == RetryPolicy().max_attempts == 4
    assert len(fake.sleeps) == 3


async def test_search_raises_the_last_error_seen(client: EnkashClient) -> None:
    with aioresponses() as m:
        m.post(SEARCH, status=503, payload=failed("first"))
        m.post(SEARCH, exception=aiohttp.ServerDisconnectedError())
        m.post(SEARCH, status=502, payload=failed("second"))
        m.post(SEARCH, status=429, payload=failed("last"))
        with pytest.raises(RateLimitError) as info:
            await search(client)
    assert info.value.api_message == "last"


# --------------------------------------------------------------------------- create


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_create_is_not_resent_on_server_error(
    client: EnkashClient, fake: FakeTime, status: int
) -> None:
    # Without a unique_ref_no the outcome cannot be checked, so it is reported, not resent.
    with aioresponses() as m:
        m.post(CREATE, status=status, payload=failed())
        m.post(CREATE, payload=ok(customer(1)))
        with pytest.raises(AmbiguousCreateError) as info:
            await client.customers.create(NO_REF)
    assert isinstance(info.value.cause, ServerError)
    assert count(m) == 1
    assert fake.sleeps == []


async def test_create_is_not_resent_on_read_timeout(client: EnkashClient) -> None:
    with aioresponses() as m:
        m.post(CREATE, exception=TimeoutError())
        m.post(CREATE, payload=ok(customer(1)))
        with pytest.raises(AmbiguousCreateError) as info:
            await client.customers.create(NO_REF)
    assert isinstance(info.value.cause, RequestTimeout)
    assert count(m) == 1


async def test_create_is_not_resent_on_disconnect_while_reading_the_body(
    client: EnkashClient,
) -> None:
    with aioresponses() as m:
        m.post(CREATE, payload=ok(customer(1)), response_class=BodyCutResponse)
        m.post(CREATE, payload=ok(customer(1)))
        with pytest.raises(AmbiguousCreateError) as info:
            await client.customers.create(NO_REF)
    assert isinstance(info.value.cause, TransportError)
    assert count(m) == 1


@pytest.mark.parametrize(
    "make_error", [refused, dns_failure, connect_timeout], ids=["refused", "dns", "timeout"]
)
async def test_create_is_retried_when_it_never_reached_enkash(
    client: EnkashClient, make_error: Callable[[], Exception]
) -> None:
    with aioresponses() as m:
        m.post(CREATE, exception=make_error())
        m.post(CREATE, payload=ok(customer(9)))
        created = await client.customers.create(NEW)
    assert created.customer_id == "C0000009"
    assert count(m) == 2


@pytest.mark.parametrize("status", [429, 503])
async def test_create_is_retried_when_refused_unprocessed(
    client: EnkashClient, status: int
) -> None:
    with aioresponses() as m:
        m.post(CREATE, status=status, payload=failed())
        m.post(CREATE, payload=ok(customer(9)))
        created = await client.customers.create(NEW)
    assert created.customer_id == "C0000009"
    assert count(m) == 2


async def test_create_is_not_retried_on_validation_error(client: EnkashClient) -> None:
    reply = {"errorResponse": {"errorType": "VALIDATION_ERROR", "errorMessage": "bad"}}
    with aioresponses() as m:
        m.post(CREATE, payload=reply, repeat=True)
        with pytest.raises(BadRequestError):
            await client.customers.create(NEW)
    assert count(m) == 1


def test_connect_error_is_retryable_for_create_but_read_timeout_is_not() -> None:
    policy = RetryPolicy()
    assert is_retryable(ConnectError("refused"), policy, idempotent=False)
    assert not is_retryable(RequestTimeout("slow"), policy, idempotent=False)
    assert is_retryable(RequestTimeout("slow"), policy, idempotent=True)


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
    fake: FakeTime, jitter: list[tuple[float, float]]
) -> None:
    policy = RetryPolicy(
        max_attempts=6, initial_backoff=0.25, multiplier=3.0, max_backoff=5.0, sleep=fake.sleep
    )
    async with EnkashClient(BASE, token="t", retry=policy) as client:
        with aioresponses() as m:
            m.post(SEARCH, status=500, payload=failed(), repeat=True)
            with pytest.raises(ServerError):
                await search(client)
    ceilings = [min(5.0, 0.25 * 3.0**n) for n in range(5)]  # 0.25, 0.75, 2.25, 5 (capped), 5
    assert fake.sleeps == ceilings
    assert jitter[: len(ceilings)] == [(0.0, c) for c in ceilings]  # full jitter: 0 to ceiling


async def test_retry_after_seconds_is_honoured(
    client: EnkashClient, fake: FakeTime, jitter: list[tuple[float, float]]
) -> None:
    with aioresponses() as m:
        m.post(SEARCH, status=429, payload=failed(), headers={"Retry-After": "7"})
        m.post(SEARCH, payload=PAGE)
        await search(client)
    assert fake.sleeps == [7.0]
    assert jitter == []


async def test_retry_after_http_date_is_honoured(client: EnkashClient, fake: FakeTime) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with aioresponses() as m:
        m.post(SEARCH, status=503, payload=failed(), headers={"Retry-After": when})
        m.post(SEARCH, payload=PAGE)
        await search(client)
    assert fake.sleeps == [pytest.approx(30, abs=2)]


async def test_retry_after_is_capped(fake: FakeTime) -> None:
    policy = RetryPolicy(max_retry_after=12.0, sleep=fake.sleep)
    async with EnkashClient(BASE, token="t", retry=policy) as client:
        with aioresponses() as m:
            m.post(SEARCH, status=429, payload=failed(), headers={"Retry-After": "3600"})
            m.post(SEARCH, payload=PAGE)
            await search(client)
    assert fake.sleeps == [12.0]


async def test_deadline_stops_retries_before_running_past_it(
    fake: FakeTime, jitter: list[tuple[float, float]]
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

    def record(url: Any, **kwargs: Any) -> None:
        started.append(fake.now)

    async with EnkashClient(BASE, token="t", retry=policy) as client:
        with aioresponses() as m:
            m.post(SEARCH, status=503, payload=failed(), repeat=True, callback=record)
            with pytest.raises(ServerError):
                await search(client)
    start = started[0]
    # Every 4 s wait fits while an attempt can still start before the 10 s deadline.
    assert [t - start for t in started] == [0.0, 4.0, 8.0]
    assert sum(fake.sleeps) < 10.0


# --------------------------------------------------------------------------- configuration


async def test_client_policy_applies_to_every_call(fake: FakeTime) -> None:
    policy = RetryPolicy(max_attempts=2, sleep=fake.sleep)
    async with EnkashClient(BASE, token="t", retry=policy) as client:
        with aioresponses() as m:
            m.post(SEARCH, status=500, payload=failed(), repeat=True)
            m.post(CREATE, status=503, payload=failed(), repeat=True)
            with pytest.raises(ServerError):
                await search(client)
            with pytest.raises(ServerError):
                await client.customers.create(NEW)
    assert [len(calls) for calls in m.requests.values()] == [2, 2]


async def test_per_call_policy_overrides_the_client_policy(
    client: EnkashClient, fake: FakeTime
) -> None:
    once = RetryPolicy(max_attempts=1, sleep=fake.sleep)
    six = RetryPolicy(max_attempts=6, sleep=fake.sleep)
    with aioresponses() as m:
        m.post(SEARCH, status=500, payload=failed(), repeat=True)
        m.post(CREATE, status=503, payload=failed(), repeat=True)
        with pytest.raises(ServerError):
            await search(client, retry=once)
        with pytest.raises(ServerError):
            await client.customers.create(NEW, retry=six)
    assert [len(calls) for calls in m.requests.values()] == [1, 6]


async def test_policy_none_never_retries(fake: FakeTime) -> None:
    async with EnkashClient(BASE, token="t", retry=RetryPolicy.none()) as client:
        with aioresponses() as m:
            m.post(SEARCH, status=503, payload=failed(), repeat=True)
            with pytest.raises(ServerError):
                await search(client)
    assert count(m) == 1


def test_max_attempts_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# --------------------------------------------------------------------------- observing


async def test_each_retry_is_logged_at_info_as_attempt_n_of_max(
    client: EnkashClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="enkash_async")
    with aioresponses() as m:
        m.post(SEARCH, status=502, payload=failed(), repeat=True)
        with pytest.raises(ServerError):
            await search(client)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.INFO] * 3
    for n, record in enumerate(retries, start=1):
        assert f"attempt {n} of 4" in record.getMessage()


async def test_on_retry_receives_a_retry_event(fake: FakeTime) -> None:
    events: list[RetryEvent] = []
    policy = RetryPolicy(max_attempts=3, sleep=fake.sleep, on_retry=events.append)
    async with EnkashClient(BASE, token="t", retry=policy) as client:
        with aioresponses() as m:
            m.post(SEARCH, status=503, payload=failed())
            m.post(SEARCH, status=429, payload=failed(), headers={"Retry-After": "2"})
            m.post(SEARCH, payload=PAGE)
            await search(client)
    assert [(e.attempt, e.max_attempts) for e in events] == [(1, 3), (2, 3)]
    assert [type(e.error) for e in events] == [ServerError, RateLimitError]
    assert [e.wait for e in events] == fake.sleeps
    assert events[1].wait == 2.0
    assert all("search" in e.operation for e in events)


async def test_client_stats_count_requests_and_retries(client: EnkashClient) -> None:
    with aioresponses() as m:
        m.post(SEARCH, status=503, payload=failed())
        m.post(SEARCH, status=503, payload=failed())
        m.post(SEARCH, payload=PAGE)
        await search(client)
    assert (client.stats.requests, client.stats.retries) == (3, 2)
