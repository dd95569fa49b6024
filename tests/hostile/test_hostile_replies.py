"""Replies too large, too long-winded or too deep: refused or cut, and always typed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from _hostile import Hostile, envelope
from _support import new_customer
from aiohttp import web

from enkash_async import (
    AmbiguousCreateError,
    APIError,
    EnkashClient,
    EnkashError,
    RetryPolicy,
    UnexpectedResponseError,
    ValidationError,
)
from enkash_async._fast import dumps

LIMIT = 64 * 1024


def client_of(server: Hostile, **kwargs: Any) -> EnkashClient:
    kwargs.setdefault("retry", RetryPolicy.none())
    return EnkashClient(server.url, token="t", **kwargs)


# --------------------------------------------------------------------------- size


@pytest.mark.slow
async def test_a_content_length_over_max_reply_bytes_is_refused_before_reading() -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 2_000_000_000
        await response.prepare(request)
        await response.write(b'{"payload": "' + b"x" * 1000)
        await asyncio.sleep(5)  # never sends the rest: the client must not wait for it
        return response

    async with Hostile(huge) as server, client_of(server, max_reply_bytes=LIMIT) as client:
        with pytest.raises(UnexpectedResponseError, match="2000000000 bytes, over"):
            await client.customers.search().collect()


async def test_an_endless_streamed_reply_is_cut_at_max_reply_bytes() -> None:
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(1000):  # bounded: 64 MiB at most, far past the limit
            try:
                await response.write(b"[" * 65536)
            except (ConnectionError, RuntimeError):
                break
            sent += 65536
        return response

    async with Hostile(endless) as server, client_of(server, max_reply_bytes=LIMIT) as client:
        with pytest.raises(UnexpectedResponseError, match="grew past max_reply_bytes"):
            await client.customers.search().collect()
    assert sent < 1000 * 65536


def test_max_reply_bytes_must_be_sensible() -> None:
    with pytest.raises(ValidationError, match="max_reply_bytes"):
        EnkashClient("http://127.0.0.1:1", token="t", max_reply_bytes=0)


# --------------------------------------------------------------------------- excerpts


def long_winded(status: int) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = {
            "errorResponse": {
                "errorType": "VALIDATION_ERROR",
                "errorMessage": "m" * 2_000_000,
                "apiSubErrors": [{"field": "f" * 500_000, "message": "s" * 500_000}]
                + [{"field": f"f{i}", "message": "bad"} for i in range(5000)],
            }
        }
        return web.Response(status=status, body=dumps(body), content_type="application/json")

    return handler


@pytest.mark.parametrize("status", [200, 400])
async def test_an_enormous_error_message_becomes_a_short_excerpt_everywhere(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="enkash_async")
    async with Hostile(long_winded(status)) as server, client_of(server) as client:
        with pytest.raises(APIError) as info:
            await client.customers.search().collect()
    error = info.value
    assert len(str(error)) < 2000
    assert len(repr(error)) < 2000
    assert error.api_message is not None and len(error.api_message) < 1000
    assert len(error.sub_errors) <= 20
    assert all(len(repr(sub)) < 1000 for sub in error.sub_errors)
    assert sum(len(r.getMessage()) for r in caplog.records) < 10_000


async def test_an_enormous_error_in_a_retried_call_logs_only_short_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="enkash_async")

    async def handler(request: web.Request) -> web.StreamResponse:
        body = {"errorResponse": {"errorType": "SYSTEM_ERROR", "errorMessage": "m" * 2_000_000}}
        return web.Response(status=503, body=dumps(body), content_type="application/json")

    async def no_sleep(seconds: float) -> None:
        pass

    async with (
        Hostile(handler) as server,
        client_of(server, retry=RetryPolicy(sleep=no_sleep)) as client,
    ):
        with pytest.raises(APIError):
            await client.customers.search().collect()
    assert caplog.records
    assert max(len(r.getMessage()) for r in caplog.records) < 2000


# --------------------------------------------------------------------------- depth


DEEP = "__deep__"


def with_deep(body: Any, levels: int = 990) -> bytes:
    """``body`` as JSON with ``DEEP`` replaced by a list nested ``levels`` deep."""
    nested = b"[" * levels + b'"bottom"' + b"]" * levels
    return dumps(body).replace(b'"' + DEEP.encode() + b'"', nested)


def nested_reply(status: int, where: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        record = {"customerId": "C1", "id": 1, "legalName": "Acme", "uniqueRefNo": "ERP-1"}
        if where == "record":
            record["customerKeyContacts"] = DEEP
            body: Any = envelope({"data": [record], "recordsCount": 1})
            if request.path.endswith("/customer"):
                body = envelope(record)
        else:
            body = {"errorResponse": {"errorType": "SYSTEM_ERROR", "errorMessage": DEEP}}
        return web.Response(status=status, body=with_deep(body), content_type="application/json")

    return handler


@pytest.mark.parametrize(("status", "where"), [(200, "record"), (500, "error"), (400, "error")])
@pytest.mark.parametrize("call", ["search", "create"])
async def test_a_reply_nested_990_deep_is_an_unexpected_response(
    status: int, where: str, call: str
) -> None:
    async with Hostile(nested_reply(status, where)) as server, client_of(server) as client:
        with pytest.raises(EnkashError) as info:
            if call == "search":
                await client.customers.search().collect()
            else:
                await client.customers.create(new_customer(None))
    # Typed, and when the reply cannot be read it says so (a create: as the failure's cause).
    error: BaseException | None = info.value
    if isinstance(error, AmbiguousCreateError):
        error = error.cause
    assert isinstance(error, UnexpectedResponseError if where == "record" else APIError)


@pytest.mark.slow
async def test_create_many_reports_one_result_per_input_when_replies_nest_too_deep() -> None:
    async with Hostile(nested_reply(200, "record")) as server, client_of(server) as client:
        inputs = [new_customer(f"ERP-{i}") for i in range(20)]
        results = [r async for r in client.customers.create_many(inputs, concurrency=5)]
    assert sorted(r.index for r in results) == list(range(20))
    assert all(not r.ok for r in results)
