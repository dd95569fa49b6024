"""Hooks and log lines: what a caller is told of each logical call and HTTP request,
over the fake EnKash on loopback."""

from __future__ import annotations

import logging

import pytest
from _observed import QUICK, Recorder, client_for
from _support import new_customer

from enkash_async import (
    CallEnded,
    CustomerCreate,
    EnkashClient,
    RequestSent,
    ResponseReceived,
    ServerError,
    _log,
)
from enkash_async.testing import FakeEnkash, Fault


def _customer(ref: str) -> CustomerCreate:
    made: CustomerCreate = new_customer(ref)
    return made


def _client(server: FakeEnkash, hooks: object) -> EnkashClient:
    return client_for(server, hooks)


async def test_a_create_is_one_call_with_its_request_inside(server: FakeEnkash) -> None:
    hooks = Recorder()
    async with _client(server, hooks) as client:
        await client.customers.create(_customer("HOOK-1"))
    kinds = [type(e).__name__ for e in hooks.events]
    assert kinds[0] == "CallStarted" and hooks.events[0].operation == "customers.create"
    assert kinds[-1] == "CallEnded"
    ended = hooks.events[-1]
    assert ended.operation == "customers.create" and ended.outcome == "ok"
    assert ended.attempts == 1 and not ended.reconciled
    assert ended.state["opened"] is True  # per-call state travels from start to end
    sent = hooks.of(RequestSent, "customers.create")
    received = hooks.of(ResponseReceived, "customers.create")
    assert [e.path for e in sent] == ["/api/v0/customer"]
    assert received[0].status == 200 and received[0].bytes > 0
    assert ended.request_id == sent[0].request_id == received[0].request_id


async def test_a_create_retried_then_reconciled_says_so(server: FakeEnkash) -> None:
    hooks = Recorder()
    server.inject(Fault.after_commit(status=500), route="create", times=1)
    async with _client(server, hooks) as client:
        await client.customers.create(_customer("HOOK-2"))
    ended = [e for e in hooks.events if isinstance(e, CallEnded)][-1]
    assert ended.operation == "customers.create" and ended.outcome == "ok"
    assert ended.reconciled is True
    assert ended.attempts == 2  # the create, then the lookup that found it
    paths = [e.path for e in hooks.of(RequestSent, "customers.create")]
    assert paths == ["/api/v0/customer", "/api/v0/customer/search"]


async def test_a_failed_call_ends_with_its_error(server: FakeEnkash) -> None:
    hooks = Recorder()
    server.inject(Fault.status(500), route="search")
    async with _client(server, hooks) as client:
        with pytest.raises(ServerError):
            await client.customers.search().first()
    ended = [e for e in hooks.events if isinstance(e, CallEnded)][-1]
    assert ended.outcome == "error" and isinstance(ended.error, ServerError)
    assert ended.attempts == QUICK.max_attempts
    statuses = [e.status for e in hooks.of(ResponseReceived, "customers.search.page")]
    assert statuses == [500] * QUICK.max_attempts


async def test_a_hook_that_raises_is_logged_once_and_never_breaks_the_call(
    server: FakeEnkash, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def request_sent(self, event: RequestSent) -> None:
            raise RuntimeError("hook bug")

    async with _client(server, Broken()) as client:
        with caplog.at_level(logging.WARNING, logger="enkash_async"):
            await client.customers.create(_customer("HOOK-3"))
            await client.customers.create(_customer("HOOK-4"))
    warnings = [r for r in caplog.records if "hook of Broken raised" in r.getMessage()]
    assert len(warnings) == 1
    assert "request_sent" in warnings[0].getMessage()


async def test_log_lines_name_each_request_and_never_a_secret(
    server: FakeEnkash, caplog: pytest.LogCaptureFixture
) -> None:
    server.inject(Fault.status(503, retry_after=0), route="create", times=1)
    async with _client(server, None) as client:
        with caplog.at_level(logging.DEBUG, logger="enkash_async"):
            await client.customers.create(_customer("HOOK-5"))
    lines = [r.getMessage() for r in caplog.records]
    per_request = [line for line in lines if "POST /api/v0/customer ->" in line]
    assert len(per_request) == 2 and "-> 503" in per_request[0] and "attempt 2" in per_request[1]
    summary = [line for line in lines if "succeeded after 2 requests" in line]
    assert len(summary) == 1 and summary[0].startswith("customers.create")
    creds = server.credentials
    secrets = [server.token, creds.client_secret, creds.password]
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert not any(secret in text for secret in secrets)


def test_enkash_log_sets_the_level_of_the_enkash_async_logger() -> None:
    logger = logging.getLogger("enkash_async")
    before = logger.level, list(logger.handlers)
    try:
        _log.configure_from_env({"ENKASH_LOG": "debug"})
        assert logger.isEnabledFor(logging.DEBUG)
        _log.configure_from_env({"ENKASH_LOG": "info"})
        assert logger.isEnabledFor(logging.INFO) and not logger.isEnabledFor(logging.DEBUG)
    finally:
        logger.setLevel(before[0])
        for handler in list(logger.handlers):
            if handler not in before[1]:
                logger.removeHandler(handler)
        _log._handler = None


def test_an_unknown_enkash_log_value_is_refused_by_configure() -> None:
    with pytest.raises(ValueError, match="ENKASH_LOG"):
        _log.configure("loud")
