"""``RetryPolicy.deadline`` bounds a whole call: its lookups, re-sends and login. Time is
a fake clock that the hanging transport and the waits advance, so nothing waits."""

from __future__ import annotations

from typing import Any

import pytest
from _support import (
    CREATE_PATH,
    LOGIN_PATH,
    SEARCH_PATH,
    FakeTime,
    FakeTransport,
    Sent,
    new_customer,
)

from enkash_async import EnkashClient, EnkashError, PasswordCredentials, RetryPolicy, Timeouts
from enkash_async.errors import RequestTimeoutError


def hanging(fake: FakeTime) -> Any:
    """A server that never answers: each attempt lasts its whole timeout."""

    def answer(sent: Sent) -> Any:
        fake.now += sent.timeouts.attempt
        return RequestTimeoutError(f"no complete reply within {sent.timeouts.attempt:g}s")

    return answer


@pytest.mark.parametrize("ref", ["ERP-1", None])
async def test_a_create_against_a_hanging_server_ends_by_its_deadline(
    fake: FakeTime, ref: str | None
) -> None:
    transport = FakeTransport()
    transport.answer(CREATE_PATH, hanging(fake), repeat=True)
    transport.answer(SEARCH_PATH, hanging(fake), repeat=True)
    policy = RetryPolicy(deadline=12.0, sleep=fake.sleep, clock=fake.clock)
    start = fake.now
    async with EnkashClient(
        "https://api.enkash.test",
        token="t",
        transport=transport,
        retry=policy,
        timeouts=Timeouts(attempt=10.0),
    ) as client:
        with pytest.raises(EnkashError):
            await client.customers.create(new_customer(ref))
    assert fake.now - start <= 12.0 + 0.1


async def test_a_search_with_failing_pages_ends_by_its_deadline(fake: FakeTime) -> None:
    transport = FakeTransport().answer(SEARCH_PATH, hanging(fake), repeat=True)
    policy = RetryPolicy(deadline=5.0, max_attempts=50, sleep=fake.sleep, clock=fake.clock)
    start = fake.now
    async with EnkashClient(
        "https://api.enkash.test",
        token="t",
        transport=transport,
        retry=policy,
        timeouts=Timeouts(attempt=2.0),
    ) as client:
        with pytest.raises(RequestTimeoutError):
            await client.customers.search().collect()
    assert fake.now - start <= 5.0 + 0.1


async def test_a_login_against_a_hanging_server_ends_by_the_deadline(fake: FakeTime) -> None:
    transport = FakeTransport().answer(LOGIN_PATH, hanging(fake), repeat=True)
    policy = RetryPolicy(deadline=2.0, sleep=fake.sleep, clock=fake.clock)
    start = fake.now
    async with EnkashClient(
        "https://api.enkash.test",
        credentials=PasswordCredentials("c", "s", "u", "p"),
        transport=transport,
        retry=policy,
        timeouts=Timeouts(attempt=10.0),
    ) as client:
        with pytest.raises(EnkashError):
            await client.customers.search().collect()
    assert fake.now - start <= 2.0 + 0.1
