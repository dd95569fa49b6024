"""``customers.search``: lazy, page by page, resumable, capped, prefetching in order."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import Iterator
from typing import Any

import pytest
from _support import SEARCH_PATH, FakeTransport, Sent, other_tasks, reply

from enkash_async import (
    APIError,
    BadRequestError,
    Customer,
    CustomerSearch,
    CustomerStatus,
    EnkashClient,
    Page,
    PaginationError,
    SortDirection,
    ValidationError,
)
from enkash_async._pagination import DEFAULT_PREFETCH


def customer(i: int) -> dict[str, Any]:
    return {"customerId": f"C{i:07d}", "id": i, "legalName": f"Company {i}"}


class Ledger:
    """A search endpoint over ``total`` customers that honours offset and limit.

    ``calls`` records each request's offset, limit, other query parameters and body.
    """

    def __init__(self, total: int, *, report_count: bool = True) -> None:
        self.total = total
        self.report_count = report_count
        self.calls: list[dict[str, Any]] = []
        self.fail: dict[int, list[int]] = {}  # offset -> statuses to answer first
        self.delay: dict[int, int] = {}  # offset -> event-loop turns before answering
        self.in_flight = 0
        self.peak = 0
        self.answered: list[int] = []

    def record(self, offset: int) -> dict[str, Any]:
        return customer(offset)

    async def reply(self, sent: Sent) -> Any:
        params = dict(sent.params or {})
        offset, limit = int(params.pop("offset")), int(params.pop("limit"))
        self.calls.append(
            {
                "offset": offset,
                "limit": limit,
                "params": params,
                "body": json.loads(sent.body or b""),
            }
        )
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for _ in range(self.delay.get(offset, 0)):
                await asyncio.sleep(0)
            if self.fail.get(offset):
                status = self.fail[offset].pop(0)
                return reply({"errorResponse": {}}, status)
            data = [self.record(i) for i in range(offset, min(offset + limit, self.total))]
            payload: dict[str, Any] = {"data": data}
            if self.report_count:
                payload["recordsCount"] = self.total
            self.answered.append(offset)
            return reply({"payload": payload, "response_code": 0})
        finally:
            self.in_flight -= 1

    @property
    def offsets(self) -> list[int]:
        return [call["offset"] for call in self.calls]

    @property
    def limits(self) -> list[int]:
        return [call["limit"] for call in self.calls]


# The ledger behind the search endpoint while a test's ``with serving(ledger)`` block runs.
_served: list[Ledger] = []


async def _search_desk(sent: Sent) -> Any:
    if not _served:
        return AssertionError(f"a search was sent outside serving(): {sent.params}")
    return await _served[-1].reply(sent)


@pytest.fixture(autouse=True)
def search_desk(transport: FakeTransport) -> None:
    """Every search of the test's client is answered by the ledger it is ``serving``."""
    transport.answer(SEARCH_PATH, _search_desk, repeat=True)


@contextlib.contextmanager
def serving(ledger: Ledger) -> Iterator[Ledger]:
    _served.append(ledger)
    try:
        yield ledger
    finally:
        _served.remove(ledger)


def ids(customers: list[Customer]) -> list[int | None]:
    return [c.id for c in customers]


# --------------------------------------------------------------------------- laziness, checks


async def test_search_returns_at_once_and_sends_nothing_until_iterated(
    client: EnkashClient,
) -> None:
    ledger = Ledger(5)
    with serving(ledger):
        results = client.customers.search(CustomerSearch(legal_name="Acme"))
        await asyncio.sleep(0)
        assert ledger.calls == []
        assert ids(await results.collect()) == [0, 1, 2, 3, 4]
    assert len(ledger.calls) == 1


@pytest.mark.parametrize("page_size", [5001, 0, -1, 2.5, "10", True])
async def test_bad_page_size_raises_validation_error_before_any_request(
    client: EnkashClient, page_size: Any
) -> None:
    ledger = Ledger(5)
    with serving(ledger), pytest.raises(ValidationError) as info:
        client.customers.search(page_size=page_size)
    assert info.value.fields == ("page_size",)
    assert ledger.calls == []


async def test_page_size_5000_is_the_default_and_the_maximum(client: EnkashClient) -> None:
    ledger = Ledger(3)
    with serving(ledger):
        await client.customers.search().collect()
        await client.customers.search(page_size=5000).collect()
    assert ledger.limits == [5000, 5000]


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("start_offset", -1),
        ("max_items", -5),
        ("prefetch", -1),
        ("order_by", "shoe_size"),
        ("order_by", ["legal_name"]),
        ("direction", "UP"),
        ("filter", {"legalName": "Acme"}),
    ],
)
async def test_bad_search_arguments_raise_validation_error_before_any_request(
    client: EnkashClient, argument: str, value: Any
) -> None:
    ledger = Ledger(5)
    with serving(ledger), pytest.raises(ValidationError) as info:
        client.customers.search(**{argument: value})
    assert info.value.fields == (argument,)
    assert ledger.calls == []


# --------------------------------------------------------------------------- what is sent


@pytest.mark.parametrize(
    ("order_by", "wire"),
    [("legal_name", "legalName"), ("createdOn", "createdOn"), ("customer_id", "customerId")],
)
async def test_filters_order_and_direction_are_sent_on_every_page(
    client: EnkashClient, order_by: str, wire: str
) -> None:
    ledger = Ledger(25)
    search = CustomerSearch(legal_name="Acme", customer_status=CustomerStatus.ACTIVE)
    with serving(ledger):
        found = await client.customers.search(
            search, page_size=10, order_by=order_by, direction=SortDirection.DESC
        ).collect()
    assert len(found) == 25
    assert len(ledger.calls) == 3
    for call in ledger.calls:
        assert call["body"] == {"legalName": "Acme", "customerStatus": "ACTIVE"}
        assert call["params"] == {"orderBy": wire, "direction": "DESC"}


async def test_direction_may_be_given_as_a_string(client: EnkashClient) -> None:
    ledger = Ledger(1)
    with serving(ledger):
        await client.customers.search(direction="ASC").collect()
    assert ledger.calls[0]["params"] == {"direction": "ASC"}


async def test_start_offset_resumes(client: EnkashClient) -> None:
    ledger = Ledger(45)
    with serving(ledger):
        found = await client.customers.search(page_size=10, start_offset=20).collect()
    assert ids(found) == list(range(20, 45))
    assert ledger.offsets == [20, 30, 40]


@pytest.mark.parametrize("prefetch", [0, 1, 3])
async def test_max_items_caps_and_lowers_the_last_limit(
    client: EnkashClient, prefetch: int
) -> None:
    ledger = Ledger(1000)
    with serving(ledger):
        found = await client.customers.search(
            page_size=100, start_offset=40, max_items=250, prefetch=prefetch
        ).collect()
    assert ids(found) == list(range(40, 290))
    assert sorted(zip(ledger.offsets, ledger.limits, strict=True)) == [
        (40, 100),
        (140, 100),
        (240, 50),
    ]


async def test_max_items_zero_sends_nothing(client: EnkashClient) -> None:
    ledger = Ledger(10)
    with serving(ledger):
        assert await client.customers.search(max_items=0).collect() == []
    assert ledger.calls == []


# --------------------------------------------------------------------------- when it stops


async def test_iteration_stops_at_records_count(client: EnkashClient) -> None:
    ledger = Ledger(20)
    with serving(ledger):
        found = await client.customers.search(page_size=10).collect()
    assert ids(found) == list(range(20))
    assert ledger.offsets == [0, 10]


async def test_iteration_stops_on_a_short_page(client: EnkashClient) -> None:
    ledger = Ledger(25, report_count=False)
    with serving(ledger):
        found = await client.customers.search(page_size=10).collect()
    assert ids(found) == list(range(25))
    assert ledger.offsets == [0, 10, 20]


async def test_iteration_stops_on_an_empty_page(client: EnkashClient) -> None:
    ledger = Ledger(20, report_count=False)
    with serving(ledger):
        found = await client.customers.search(page_size=10).collect()
    assert ids(found) == list(range(20))
    assert ledger.offsets == [0, 10, 20]


async def test_no_results_yield_nothing(client: EnkashClient) -> None:
    ledger = Ledger(0)
    with serving(ledger):
        assert await client.customers.search().collect() == []
    assert len(ledger.calls) == 1


async def test_12345_records_in_pages_of_5000_take_exactly_3_requests(
    client: EnkashClient,
) -> None:
    ledger = Ledger(12_345)
    with serving(ledger):
        found = [c async for c in client.customers.search(page_size=5000)]
    assert len(found) == 12_345
    assert len({c.customer_id for c in found}) == 12_345
    assert sorted(ledger.offsets) == [0, 5000, 10_000]


async def test_a_page_repeated_for_two_offsets_raises_pagination_error(
    client: EnkashClient,
) -> None:
    ledger = Ledger(100)
    ledger.record = lambda offset: customer(offset % 10)  # type: ignore[method-assign]
    seen: list[Customer] = []
    with serving(ledger), pytest.raises(PaginationError):
        async for found in client.customers.search(page_size=10):
            seen.append(found)
    assert ids(seen) == list(range(10))
    assert len(ledger.calls) <= 2 + DEFAULT_PREFETCH  # the first page, the repeat, read-ahead


async def test_customers_without_ids_are_not_mistaken_for_a_repeated_page(
    client: EnkashClient,
) -> None:
    ledger = Ledger(30)
    ledger.record = lambda offset: {"legalName": f"Company {offset}"}  # type: ignore[method-assign]
    with serving(ledger):
        found = await client.customers.search(page_size=10).collect()
    assert [c.legal_name for c in found] == [f"Company {i}" for i in range(30)]


# --------------------------------------------------------------------------- retries


async def test_a_503_on_page_2_is_retried_without_refetching_page_1(
    client: EnkashClient,
) -> None:
    ledger = Ledger(30)
    ledger.fail[10] = [503]
    with serving(ledger):
        found = await client.customers.search(page_size=10).collect()
    assert ids(found) == list(range(30))
    assert ledger.offsets == [0, 10, 10, 20]


async def test_an_error_in_a_page_surfaces_after_the_pages_before_it(
    client: EnkashClient,
) -> None:
    ledger = Ledger(50)
    ledger.fail[20] = [400]
    seen: list[Customer] = []
    with serving(ledger), pytest.raises(BadRequestError):
        async for found in client.customers.search(page_size=10):
            seen.append(found)
    assert ids(seen) == list(range(20))


# --------------------------------------------------------------------------- shortcuts


async def test_pages_yields_page_objects(client: EnkashClient) -> None:
    ledger = Ledger(25)
    with serving(ledger):
        pages = [p async for p in client.customers.search(page_size=10).pages()]
    assert all(isinstance(p, Page) for p in pages)
    assert [(p.offset, p.next_offset, p.records_count) for p in pages] == [
        (0, 10, 25),
        (10, 20, 25),
        (20, None, 25),
    ]
    assert [ids(list(p.items)) for p in pages] == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 25)),
    ]


async def test_first_fetches_a_single_customer(client: EnkashClient) -> None:
    ledger = Ledger(500)
    with serving(ledger):
        first = await client.customers.search(page_size=100, start_offset=7).first()
    assert first is not None
    assert first.id == 7
    assert [(c["offset"], c["limit"]) for c in ledger.calls] == [(7, 1)]


async def test_first_is_none_when_nothing_matches(client: EnkashClient) -> None:
    with serving(Ledger(0)):
        assert await client.customers.search().first() is None


async def test_collect_returns_every_customer_in_order(client: EnkashClient) -> None:
    with serving(Ledger(23)):
        found = await client.customers.search(page_size=5).collect()
    assert all(isinstance(c, Customer) for c in found)
    assert ids(found) == list(range(23))


async def test_each_iteration_starts_again(client: EnkashClient) -> None:
    ledger = Ledger(15)
    with serving(ledger):
        results = client.customers.search(page_size=10)
        assert await results.collect() == await results.collect()
    assert ledger.offsets == [0, 10, 0, 10]


# --------------------------------------------------------------------------- prefetch


async def test_prefetch_fetches_ahead_concurrently_and_yields_in_order(
    client: EnkashClient,
) -> None:
    ledger = Ledger(60)
    for page in range(1, 6):
        ledger.delay[page * 10] = (6 - page) * 4  # later pages answer sooner
    with serving(ledger):
        found = await client.customers.search(page_size=10, prefetch=3).collect()
    assert ids(found) == list(range(60))
    assert ledger.peak == 3
    assert ledger.answered != sorted(ledger.answered)  # answered out of order, yielded in order
    assert sorted(ledger.offsets) == [0, 10, 20, 30, 40, 50]


async def test_error_in_a_prefetched_page_surfaces_after_the_pages_before_it(
    client: EnkashClient, loop_errors: list[dict[str, Any]]
) -> None:
    ledger = Ledger(100)
    ledger.fail[30] = [404]  # page 3 fails at once, while pages 1 and 2 are still coming
    ledger.delay.update({10: 20, 20: 20, 40: 10_000})  # page 4 would outlive the test
    seen: list[Customer] = []
    with serving(ledger):
        with pytest.raises(APIError) as info:
            async for found in client.customers.search(page_size=10, prefetch=4):
                seen.append(found)
        await _settle()
    assert info.value.status == 404
    assert ids(seen) == list(range(30))
    assert 40 not in ledger.answered  # cancelled, not awaited
    assert other_tasks() == set()
    gc.collect()
    assert loop_errors == []


async def test_breaking_out_early_leaves_no_task_or_warning(
    client: EnkashClient, loop_errors: list[dict[str, Any]]
) -> None:
    ledger = Ledger(1000)
    for page in range(2, 100):
        ledger.delay[page * 10] = 10_000  # pages still in flight at the break would outlive it
    with serving(ledger):
        async for found in client.customers.search(page_size=10, prefetch=5):
            if found.id == 14:
                break
        await _settle()
        assert other_tasks() == set()
    assert ledger.answered == [0, 10]  # the pages still in flight were cancelled
    gc.collect()
    assert loop_errors == []
    assert len(ledger.calls) <= 1 + 5 + 1


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)
