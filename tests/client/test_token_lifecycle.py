"""Token lifecycle against the fake EnKash: expiry mid-export, and a login never hammered.

A token that expires (or is revoked) in the middle of a long export is renewed, and the
rejected page fetched again: no page lost, none repeated. A login EnKash refuses is
sent once, however many calls are waiting and however many follow, so the client's own
retries never lock the account (three failed logins do).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from enkash_async import (
    AuthenticationError,
    Customer,
    CustomerCreate,
    EnkashClient,
    KeyContactCreate,
    LoginError,
    RetryPolicy,
    ServerError,
)
from enkash_async.testing import FakeEnkash, Fault

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.01, max_retry_after=0.01)


@pytest.fixture
async def server() -> AsyncIterator[FakeEnkash]:
    async with FakeEnkash(customers=100, seed=21) as s:
        yield s


def login_client(server: FakeEnkash, **kwargs: Any) -> EnkashClient:
    return EnkashClient(server.url, credentials=server.credentials, retry=FAST, **kwargs)


def wrong_password_client(server: FakeEnkash) -> EnkashClient:
    wrong = attrs.evolve(server.credentials, password="not-the-password")
    return EnkashClient(server.url, credentials=wrong, retry=FAST)


def new_customer(i: int) -> CustomerCreate:
    return CustomerCreate(
        legal_name=f"Company {i}",
        customer_key_contacts=[
            KeyContactCreate(name="Asha", legal_name=f"Company {i}", mobile="9876543210")
        ],
        unique_ref_no=f"ERP-{i:07d}",
    )


def all_ids(server: FakeEnkash) -> list[str]:
    return [c["customerId"] for c in server.customers]


# --------------------------------------------------------------------------- expiry mid-export


@pytest.mark.parametrize("prefetch", [1, 4])
async def test_token_expiring_mid_export_is_renewed_without_losing_or_repeating_a_page(
    server: FakeEnkash, prefetch: int
) -> None:
    seen: list[Customer] = []
    offsets: list[int] = []
    async with login_client(server) as client:
        async for page in client.customers.search(page_size=10, prefetch=prefetch).pages():
            offsets.append(page.offset)
            seen.extend(page.items)
            if page.offset == 20:
                server.expire_tokens()  # every token, the client's included
        assert client.stats.logins == 2
    assert offsets == list(range(0, 100, 10))
    assert [c.customer_id for c in seen] == all_ids(server)
    assert server.stats.logins == 2
    assert server.stats.failed_logins == 0


async def test_token_revoked_with_response_code_117_mid_export_is_renewed(
    server: FakeEnkash,
) -> None:
    seen: list[Customer] = []
    async with login_client(server) as client:
        async for page in client.customers.search(page_size=10).pages():
            seen.extend(page.items)
            if page.offset == 50:
                server.inject(Fault.token_invalid(), route="search", times=1)
    assert [c.customer_id for c in seen] == all_ids(server)
    assert server.stats.logins == 2
    assert server.stats.requests["search"] == 11  # ten pages, one of them sent twice


async def test_short_lived_tokens_are_renewed_before_they_expire() -> None:
    # Renewed halfway through its life (0.5 s), the token is never seen expired; the
    # export takes at least 0.8 s (one page at a time), so it needs at least one renewal.
    async with FakeEnkash(customers=60, seed=22, token_ttl=1.0, latency={"search": 0.08}) as s:
        async with login_client(s) as client:
            seen = await client.customers.search(page_size=6, prefetch=0).collect()
        assert [c.customer_id for c in seen] == all_ids(s)
        assert s.stats.logins >= 2  # renewed during the export ...
        assert s.stats.requests["search"] == 10  # ... before EnKash rejected anything


async def test_concurrent_calls_on_an_expired_token_share_one_login(server: FakeEnkash) -> None:
    async with login_client(server) as client:
        await client.customers.search(page_size=1, max_items=1).collect()
        server.expire_tokens()
        pages = await asyncio.gather(
            *(client.customers.search(page_size=5, max_items=5).collect() for _ in range(30))
        )
    assert all(len(found) == 5 for found in pages)
    assert server.stats.logins == 2


async def test_static_token_that_expires_is_raised_without_any_login(
    server: FakeEnkash,
) -> None:
    async with EnkashClient(server.url, token=server.issue_token(), retry=FAST) as client:
        await client.customers.search(max_items=1).collect()
        server.expire_tokens()
        with pytest.raises(AuthenticationError):
            await client.customers.search(max_items=1).collect()
    assert server.stats.requests["token"] == 0


# --------------------------------------------------------------------------- refused logins


async def test_a_refused_login_is_sent_once_for_a_whole_bulk_create(server: FakeEnkash) -> None:
    async with wrong_password_client(server) as client:
        results = [
            r
            async for r in client.customers.create_many(
                (new_customer(i) for i in range(50)), concurrency=10
            )
        ]
    assert len(results) == 50
    assert all(isinstance(r.error, LoginError) for r in results)
    assert server.stats.requests["token"] == 1
    assert server.stats.failed_logins == 1
    assert server.stats.requests["create"] == 0
    assert not server.is_locked(server.credentials.username)


async def test_calls_after_a_refused_login_never_reach_the_lockout(server: FakeEnkash) -> None:
    async with wrong_password_client(server) as client:
        for _ in range(5):
            with pytest.raises(LoginError) as info:
                await client.customers.search(max_items=1).collect()
    assert server.stats.failed_logins == 1
    assert not server.is_locked(server.credentials.username)
    assert "not logging in again" in str(info.value)


async def test_a_refresh_refused_mid_export_is_tried_once(server: FakeEnkash) -> None:
    seen: list[Customer] = []
    async with login_client(server) as client:
        with pytest.raises(LoginError):
            async for page in client.customers.search(page_size=10, prefetch=4).pages():
                seen.extend(page.items)
                if page.offset == 0:
                    server.inject(Fault.status(401), route="token")  # every login from now
                    server.expire_tokens()
    # Up to four prefetched pages were rejected together; they waited for one login.
    assert server.stats.requests["token"] == 2
    assert [c.customer_id for c in seen] == all_ids(server)[: len(seen)]


async def test_calls_waiting_for_a_failed_login_share_its_failure(server: FakeEnkash) -> None:
    server.inject(Fault.status(500), route="token", times=1)
    async with login_client(server) as client:
        outcomes = await asyncio.gather(
            *(client.customers.search(max_items=1).collect() for _ in range(20)),
            return_exceptions=True,
        )
        assert all(isinstance(o, ServerError) for o in outcomes)
        assert server.stats.requests["token"] == 1
        # A failure that was no refusal is not remembered: the next call logs in.
        assert len(await client.customers.search(max_items=1).collect()) == 1
    assert server.stats.requests["token"] == 2


async def test_login_is_retried_only_when_enkash_refused_it_unprocessed(
    server: FakeEnkash,
) -> None:
    server.inject(Fault.status(503, retry_after=0), route="token", times=2)
    async with login_client(server) as client:
        assert len(await client.customers.search(max_items=3).collect()) == 3
    assert server.stats.requests["token"] == 3
    assert server.stats.logins == 1
