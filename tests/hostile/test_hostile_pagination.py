"""A search cannot run away, whatever pages the server sends: bounded requests, never
more items than ``max_items`` or the reported total, typed errors."""

from __future__ import annotations

from typing import Any

import pytest
from _hostile import Hostile, envelope
from _support import SEARCH_PATH, FakeTransport, Sent, fake_client, ok, reply
from aiohttp import web

from enkash_async import EnkashClient, PaginationError, RetryPolicy, UnexpectedResponseError
from enkash_async._pagination import PAGE_SLACK


def record(i: int) -> dict[str, Any]:
    return {"customerId": f"C{i:07d}", "id": i, "legalName": f"Company {i}"}


def page(records: list[dict[str, Any]], total: int | None) -> Any:
    return reply(ok({"data": records, "recordsCount": total}))


def alternating(total: int, size: int) -> Any:
    """A server that ignores the offset and alternates two pages."""
    turn = [0]

    def answer(sent: Sent) -> Any:
        turn[0] += 1
        start = 0 if turn[0] % 2 else size
        return page([record(start + i) for i in range(size)], total)

    return answer


@pytest.mark.parametrize("mode", ["plain", "consistent", "dedupe"])
async def test_a_server_alternating_two_pages_is_stopped_within_the_request_bound(
    mode: str,
) -> None:
    transport = FakeTransport().answer(SEARCH_PATH, alternating(1000, 10), repeat=True)
    async with fake_client(transport) as client:
        flags: dict[str, bool] = {} if mode == "plain" else {mode: True}
        items = client.customers.search(page_size=10, prefetch=0, **flags)  # type: ignore[arg-type]
        seen = 0
        with pytest.raises(PaginationError):
            async for _ in items:
                seen += 1
    assert len(transport.sent) <= 1000 // 10 + PAGE_SLACK
    assert seen <= 1000


async def test_pages_of_records_without_ids_stop_at_the_request_bound() -> None:
    calls = [0]

    def endless(sent: Sent) -> Any:  # a new page each time, whatever the offset
        calls[0] += 1
        return page([{"legalName": f"no id {calls[0]}.{i}"} for i in range(10)], 30)

    transport = FakeTransport().answer(SEARCH_PATH, endless, repeat=True)
    async with fake_client(transport) as client:
        found = await client.customers.search(page_size=10).collect()
    assert len(found) <= 30
    assert len(transport.sent) <= 3 + PAGE_SLACK


async def test_a_total_that_keeps_growing_cannot_keep_the_search_going() -> None:
    calls = [0]

    def growing(sent: Sent) -> Any:
        calls[0] += 1
        offset = int(sent.params["offset"]) if sent.params else 0
        return page([record(offset + i) for i in range(10)], 20 + 10 * calls[0])

    transport = FakeTransport().answer(SEARCH_PATH, growing, repeat=True)
    async with fake_client(transport) as client:
        with pytest.raises(PaginationError, match="more than the"), pytest.warns(Warning):
            await client.customers.search(page_size=10, prefetch=0).collect()
    assert len(transport.sent) <= 3 + PAGE_SLACK


@pytest.mark.parametrize(("max_items", "total"), [(10, None), (10, 100), (None, 100)])
async def test_a_page_with_more_records_than_the_limit_is_a_pagination_error(
    max_items: int | None, total: int | None
) -> None:
    def generous(sent: Sent) -> Any:
        limit = int(sent.params["limit"]) if sent.params else 0
        offset = int(sent.params["offset"]) if sent.params else 0
        return page([record(offset + i) for i in range(limit + 5)], total)

    transport = FakeTransport().answer(SEARCH_PATH, generous, repeat=True)
    async with fake_client(transport) as client:
        seen = []
        with pytest.raises(PaginationError, match="for a limit of"):
            async for customer in client.customers.search(page_size=10, max_items=max_items):
                seen.append(customer)
    assert len(seen) <= (max_items or 100)


@pytest.mark.parametrize("key", [["C1"], {"id": "C1"}])
async def test_dedupe_with_a_customer_id_that_is_no_string_is_a_typed_error(key: Any) -> None:
    transport = FakeTransport().answer(
        SEARCH_PATH, page([{"customerId": key, "legalName": "Odd"}], 1)
    )
    async with fake_client(transport) as client:
        with pytest.raises((UnexpectedResponseError, PaginationError)):
            await client.customers.search(dedupe=True).collect()


async def test_a_page_identical_to_the_one_before_is_a_pagination_error() -> None:
    # The server ignores offset, sends records without ids and no recordsCount: nothing
    # but the pages themselves can show that the search is not moving.
    body = {"data": [{"legalName": f"no id {i}"} for i in range(10)]}

    async def same_page(request: web.Request) -> web.StreamResponse:
        return web.json_response(envelope(body))

    async with (
        Hostile(same_page) as server,
        EnkashClient(server.url, token="t", retry=RetryPolicy.none()) as client,
    ):
        seen = 0
        with pytest.raises(PaginationError, match="same records as the page before"):
            async for _ in client.customers.search(page_size=10):
                seen += 1
                assert seen <= 1000, "the search ran away"
    assert len(server.received) == 2
    assert seen == 10
