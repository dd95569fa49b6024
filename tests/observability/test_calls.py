"""Which logical calls hooks are told of, what each carries, and the request ids a
success returns; over the fake EnKash on loopback."""

from __future__ import annotations

import asyncio
import base64
import logging
from urllib.parse import urlsplit

import attrs
import pytest
from _observed import Recorder, client_for
from _support import new_customer

from enkash_async import (
    CallEnded,
    CallStarted,
    CustomerSearch,
    CustomerUpdate,
    LoginError,
    PasswordCredentials,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    ServerError,
)
from enkash_async.testing import FakeEnkash, Fault


async def test_the_login_is_a_call_of_its_own_inside_the_call_it_serves(
    server: FakeEnkash,
) -> None:
    hooks = Recorder()
    async with client_for(server, hooks) as client:
        await client.customers.create(new_customer("CALL-1"))
    started = hooks.of(CallStarted)
    assert [e.operation for e in started] == ["customers.create", "login"]
    create, login = started
    assert login.parent is create.state  # its parent is the create it logged in for
    (ended,) = hooks.of(CallEnded, "login")
    assert ended.outcome == "ok" and ended.attempts == 1
    (sent,) = hooks.of(RequestSent, "login")
    assert (sent.method, sent.path) == ("POST", "/oauth/token")


async def test_a_refused_login_ends_its_call_with_the_login_error(server: FakeEnkash) -> None:
    hooks = Recorder()
    wrong = PasswordCredentials("wrong-id", "wrong-secret", "someone", "not-the-password")
    async with client_for(server, hooks, credentials=wrong) as client:
        with pytest.raises(LoginError):
            await client.customers.create(new_customer("CALL-2"))
    (login,) = hooks.of(CallEnded, "login")
    assert login.outcome == "error" and isinstance(login.error, LoginError)
    (create,) = hooks.of(CallEnded, "customers.create")
    assert create.outcome == "error" and create.attempts == 0  # nothing was sent


async def test_each_search_page_is_a_call_with_its_offset_limit_and_records(
    server: FakeEnkash,
) -> None:
    hooks = Recorder()
    async with client_for(server, hooks) as client:
        async for _ in client.customers.create_many(new_customer(f"PAGE-{n}") for n in range(5)):
            pass
        hooks.events.clear()
        pages = [page async for page in client.customers.search(page_size=2, prefetch=0).pages()]
    ended = hooks.of(CallEnded, "customers.search.page")
    assert [(e.details["offset"], e.details["limit"], e.details["records"]) for e in ended] == [
        (0, 2, 2),
        (2, 2, 2),
        (4, 2, 1),
    ]
    # request_id on each page is the one its call ended with.
    assert [p.request_id for p in pages] == [e.request_id for e in ended]
    assert all(p.request_id for p in pages)


async def test_update_and_lookup_calls_are_named_and_templated(server: FakeEnkash) -> None:
    hooks = Recorder()
    async with client_for(server, hooks) as client:
        made = await client.customers.create(new_customer("CALL-3"))
        assert made.customer_id is not None
        await client.customers.update(made.customer_id, CustomerUpdate(legal_name="Renamed Ltd"))
        await client.customers.find_by_unique_ref("CALL-3")
        await client.customers.activate(made.customer_id)
    names = [e.operation for e in hooks.of(CallEnded)]
    assert names == [
        "login",
        "customers.create",
        "customers.update",
        "customers.find_by_unique_ref",
        "customers.activate",
    ]
    (update,) = hooks.of(RequestSent, "customers.update")
    assert update.path.endswith(made.customer_id)
    assert update.template == "/api/v0/customer/{customerId}"
    assert update.server_address == "127.0.0.1" and update.server_port == urlsplit(server.url).port


async def test_create_results_carry_the_request_id_of_the_reply_that_gave_them(
    server: FakeEnkash,
) -> None:
    hooks = Recorder()
    server.inject(Fault.after_commit(status=500), route="create", times=1)
    async with client_for(server, hooks) as client:
        results = [
            r
            async for r in client.customers.create_many(
                [new_customer("RID-1"), new_customer("RID-2")], concurrency=1
            )
        ]
    assert all(r.ok and r.request_id for r in results)
    assert results[0].reconciled  # found by its lookup: that lookup's id
    created = hooks.of(CallEnded, "customers.create")
    assert [r.request_id for r in results] == [e.request_id for e in created]
    lookup = [e for e in hooks.of(RequestSent, "customers.create") if "search" in e.path]
    assert results[0].request_id == lookup[0].request_id


async def test_create_many_is_a_batch_whose_creates_are_its_children(server: FakeEnkash) -> None:
    hooks = Recorder()
    async with client_for(server, hooks) as client:
        async for _ in client.customers.create_many(
            [new_customer("BATCH-1"), new_customer("BATCH-2"), new_customer(None)]
        ):
            pass
    (batch,) = hooks.of(CallStarted, "customers.create_many")
    children = hooks.of(CallStarted, "customers.create")
    assert len(children) == 3 and all(c.parent is batch.state for c in children)
    (ended,) = hooks.of(CallEnded, "customers.create_many")
    assert ended.outcome == "ok" and ended.details["created"] == 3


async def test_a_retry_is_told_before_its_wait(server: FakeEnkash) -> None:
    hooks = Recorder()
    server.inject(Fault.status(503, retry_after=0), route="search", times=1)
    async with client_for(server, hooks) as client:
        await client.customers.search().first()
    (retry,) = hooks.of(RetryScheduled)
    assert retry.operation == "customers.search.page" and retry.attempt == 1
    statuses = [e.status for e in hooks.of(ResponseReceived, "customers.search.page")]
    assert statuses == [503, 200]


async def test_a_call_cancelled_mid_request_ends_cancelled(server: FakeEnkash) -> None:
    hooks = Recorder()
    async with client_for(server, hooks) as client:
        await client.customers.find_by_unique_ref("WARM-UP")  # logs in first
        server.inject(Fault.latency(30.0), route="search")
        task = asyncio.ensure_future(client.customers.find_by_unique_ref("SLOW"))
        while not hooks.of(RequestSent, "customers.find_by_unique_ref")[1:]:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    ended = hooks.of(CallEnded, "customers.find_by_unique_ref")[-1]
    assert ended.outcome == "cancelled"
    last = hooks.of(ResponseReceived, "customers.find_by_unique_ref")[-1]
    assert last.status is None and last.error is None


async def test_hooks_may_be_a_list_and_one_that_raises_breaks_neither_the_call_nor_the_other(
    server: FakeEnkash, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def call_started(self, event: CallStarted) -> None:
            raise RuntimeError("started")

        def call_ended(self, event: CallEnded) -> None:
            raise RuntimeError("ended")

    hooks = Recorder()
    async with client_for(server, [Broken(), hooks]) as client:
        with caplog.at_level(logging.WARNING, logger="enkash_async"):
            for n in range(3):
                await client.customers.create(new_customer(f"LIST-{n}"))
    assert len(hooks.of(CallEnded, "customers.create")) == 3
    warned = [r.getMessage() for r in caplog.records if "hook of Broken" in r.getMessage()]
    assert len(warned) == 2  # once per failing method


async def test_no_event_carries_a_secret(server: FakeEnkash) -> None:
    hooks = Recorder()
    server.inject(Fault.status(503, retry_after=0), route="create", times=1)
    server.inject(Fault.status(500), route="search", times=4)
    async with client_for(server, hooks) as client:
        await client.customers.create(new_customer("SECRET-1"))
        with pytest.raises(ServerError):
            await client.customers.search(CustomerSearch(unique_ref_no="SECRET-1")).first()
    creds = server.credentials
    secrets = [creds.client_secret, creds.password, server.token]
    secrets.append(base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode())
    assert hooks.events
    for event in hooks.events:
        values = [getattr(event, field.name) for field in attrs.fields(type(event))]
        text = " ".join(repr(value) + str(value) for value in values)
        assert not any(secret in text for secret in secrets), event
