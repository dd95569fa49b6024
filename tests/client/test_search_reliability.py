"""Pagination over a table that changes during the search: drift is never silent.

Offsets over a changing table skip or repeat rows. ``dedupe=True`` yields each
customer once; a change of ``records_count`` between pages is flagged on the page
(``count_changed``) and warned (``PaginationDriftWarning``); ``consistent=True`` raises
``PaginationError`` instead of going on.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Callable

import pytest
from _support import SEARCH_PATH, FakeTransport, Sent, reply

from enkash_async import (
    Customer,
    CustomerCreate,
    EnkashClient,
    KeyContactCreate,
    Page,
    PaginationDriftWarning,
    PaginationError,
    Reply,
    RequestTimeoutError,
    RetryPolicy,
    SortDirection,
)
from enkash_async.testing import FakeEnkash


class Table:
    """A search endpoint over ``rows`` (customer ids) that may change between calls.

    ``changes[n]`` runs just before the ``n``-th call (0-based) is answered.
    """

    def __init__(self, rows: list[int]) -> None:
        self.rows = rows
        self.changes: dict[int, Callable[[list[int]], None]] = {}
        self.calls = 0

    def reply(self, sent: Sent) -> Reply:
        params = sent.params or {}
        offset, limit = int(params["offset"]), int(params["limit"])
        change = self.changes.get(self.calls)
        if change is not None:
            change(self.rows)
        self.calls += 1
        data = [
            {"customerId": f"C{i:05d}", "id": i, "legalName": f"Company {i}"}
            for i in self.rows[offset : offset + limit]
        ]
        payload = {"data": data, "recordsCount": len(self.rows)}
        return reply({"payload": payload, "response_code": 0})


@pytest.fixture
def table(transport: FakeTransport) -> Table:
    rows = Table(list(range(30)))
    transport.answer(SEARCH_PATH, rows.reply, repeat=True)
    return rows


def numbers(customers: list[Customer]) -> list[int]:
    return [c.id for c in customers if c.id is not None]


def insert_three_at_the_top(rows: list[int]) -> None:
    rows[:0] = [100, 101, 102]


def delete_two_seen_rows(rows: list[int]) -> None:
    rows.remove(3)
    rows.remove(4)


# --------------------------------------------------------------------------- dedupe


async def test_rows_inserted_before_the_offset_repeat_rows_without_dedupe(
    client: EnkashClient, table: Table
) -> None:
    table.changes[1] = insert_three_at_the_top
    with pytest.warns(PaginationDriftWarning):
        seen = await client.customers.search(page_size=10).collect()
    repeated = sorted(n for n, times in Counter(numbers(seen)).items() if times > 1)
    assert repeated == [7, 8, 9]  # what dedupe is for


async def test_dedupe_yields_each_customer_once_when_pages_overlap(
    client: EnkashClient, table: Table
) -> None:
    table.changes[1] = insert_three_at_the_top
    with pytest.warns(PaginationDriftWarning):
        seen = await client.customers.search(page_size=10, dedupe=True).collect()
    assert numbers(seen) == list(range(30))


async def test_dedupe_drops_a_repeat_even_without_a_count_change(
    client: EnkashClient, transport: FakeTransport
) -> None:
    # One row inserted at the top and another deleted further down: the total is the
    # same, yet page 2 starts with the last row of page 1.
    rows = Table(list(range(20)))

    def insert_and_delete(r: list[int]) -> None:
        r.insert(0, 100)
        r.remove(15)

    rows.changes[1] = insert_and_delete
    transport.answer(SEARCH_PATH, rows.reply, repeat=True)
    seen = await client.customers.search(page_size=10, dedupe=True).collect()
    assert numbers(seen) == [*range(15), *range(16, 20)]


async def test_a_page_repeated_because_a_page_of_rows_was_inserted_is_drift_not_a_loop(
    client: EnkashClient, table: Table
) -> None:
    # Exactly page_size rows inserted at the top: page 2 is page 1 again, yet the total
    # changed, so this is the table moving, not EnKash ignoring the offset.
    table.changes[1] = lambda rows: rows.__setitem__(slice(0, 0), list(range(100, 110)))
    with pytest.warns(PaginationDriftWarning, match="from 30 to 40"):
        seen = await client.customers.search(page_size=10, dedupe=True).collect()
    assert numbers(seen) == list(range(30))


# Pages prefetched before the inserts reflect the old table; at least one must come after.
@pytest.mark.parametrize("prefetch", [0, 1])
async def test_dedupe_against_fake_enkash_with_customers_created_mid_search(
    prefetch: int,
) -> None:
    async with FakeEnkash(customers=40, seed=9) as server:
        originals = {c["customerId"] for c in server.customers}
        async with EnkashClient(server.url, token=server.token) as client:
            search = client.customers.search(
                page_size=10,
                order_by="id",
                direction=SortDirection.DESC,  # new customers come first: offsets shift
                prefetch=prefetch,
                dedupe=True,
            )
            pages: list[Page[Customer]] = []
            with pytest.warns(PaginationDriftWarning):
                async for page in search.pages():
                    pages.append(page)
                    if len(pages) == 1:
                        for i in range(3):
                            await client.customers.create(new_customer(i))
    ids = [c.customer_id for page in pages for c in page.items]
    assert len(ids) == len(set(ids))
    assert set(ids) == originals  # nothing skipped, nothing twice
    assert any(page.count_changed for page in pages)
    assert pages[0].records_count == 40 and pages[-1].records_count == 43


def new_customer(i: int) -> CustomerCreate:
    return CustomerCreate(
        legal_name=f"Inserted {i}",
        customer_key_contacts=[
            KeyContactCreate(name="Asha", legal_name=f"Inserted {i}", mobile="9876543210")
        ],
        unique_ref_no=f"NEW-{i}",
    )


# --------------------------------------------------------------------------- drift reported


async def test_a_changed_count_is_flagged_on_its_page_and_warned(
    client: EnkashClient, table: Table
) -> None:
    table.changes[1] = insert_three_at_the_top
    with pytest.warns(PaginationDriftWarning, match="from 30 to 33 at offset 10"):
        pages = [page async for page in client.customers.search(page_size=10).pages()]
    assert [p.count_changed for p in pages] == [False, True, False, False]
    assert [p.records_count for p in pages] == [30, 33, 33, 33]


async def test_an_unchanged_count_is_neither_flagged_nor_warned(
    client: EnkashClient, table: Table
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pages = [page async for page in client.customers.search(page_size=10).pages()]
    assert [p.count_changed for p in pages] == [False, False, False]


async def test_rows_deleted_before_the_offset_are_skipped_with_a_warning_by_default(
    client: EnkashClient, table: Table
) -> None:
    table.changes[1] = delete_two_seen_rows
    with pytest.warns(PaginationDriftWarning, match="from 30 to 28"):
        seen = await client.customers.search(page_size=10).collect()
    missing = sorted(set(range(30)) - set(numbers(seen)) - {3, 4})
    assert missing == [10, 11]  # shifted into page 1 after it was read: the warning says so


async def test_a_short_page_before_records_count_is_reached_is_warned(
    client: EnkashClient, transport: FakeTransport
) -> None:
    # EnKash says 30 but the second page stops short: the rest would be lost unnoticed.
    rows = Table(list(range(30)))
    transport.answer(SEARCH_PATH, rows.reply, lambda sent: short(rows.reply(sent), 4))
    with pytest.warns(PaginationDriftWarning, match="returned 4 of the 10 .* 16 rows"):
        seen = await client.customers.search(page_size=10).collect()
    assert numbers(seen) == list(range(14))


async def test_consistent_raises_on_a_short_page_before_records_count(
    client: EnkashClient, transport: FakeTransport
) -> None:
    rows = Table(list(range(30)))
    transport.answer(SEARCH_PATH, rows.reply, lambda sent: short(rows.reply(sent), 0))
    with pytest.raises(PaginationError, match="returned 0 of the 10"):
        await client.customers.search(page_size=10, consistent=True).collect()


async def test_a_short_last_page_at_records_count_is_no_drift(
    client: EnkashClient, transport: FakeTransport
) -> None:
    rows = Table(list(range(25)))
    transport.answer(SEARCH_PATH, rows.reply, repeat=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seen = await client.customers.search(page_size=10, max_items=23, consistent=True).collect()
    assert numbers(seen) == list(range(23))


def short(result: Reply, keep: int) -> Reply:
    """``result`` with only its first ``keep`` customers (the total left as it was)."""
    body = json.loads(result.body)
    body["payload"]["data"] = body["payload"]["data"][:keep]
    return reply(body)


async def test_consistent_raises_instead_of_skipping_rows(
    client: EnkashClient, table: Table
) -> None:
    table.changes[1] = delete_two_seen_rows
    seen: list[Customer] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # raised, not merely warned
        with pytest.raises(PaginationError, match="from 30 to 28 at offset 10"):
            search = client.customers.search(page_size=10, consistent=True, prefetch=0)
            async for customer in search:
                seen.append(customer)
    assert numbers(seen) == list(range(10))  # page 1 only; nothing after the drift


async def test_consistent_raises_on_a_growing_total_too(client: EnkashClient, table: Table) -> None:
    table.changes[2] = insert_three_at_the_top
    with pytest.raises(PaginationError):
        await client.customers.search(page_size=10, consistent=True, dedupe=True).collect()


@pytest.mark.parametrize("prefetch", [0, 1, 4])
async def test_consistent_over_an_unchanging_table_yields_every_row_once(prefetch: int) -> None:
    async with FakeEnkash(customers=95, seed=9) as server:
        async with EnkashClient(server.url, token=server.token) as client:
            seen = await client.customers.search(
                page_size=10, consistent=True, prefetch=prefetch
            ).collect()
        assert [c.customer_id for c in seen] == [c["customerId"] for c in server.customers]


async def test_consistent_against_fake_enkash_when_a_customer_is_created_mid_search() -> None:
    seen: list[Customer] = []
    async with (
        FakeEnkash(customers=30, seed=9) as server,
        EnkashClient(server.url, token=server.token) as client,
    ):
        with pytest.raises(PaginationError, match="from 30 to 31"):
            search = client.customers.search(page_size=10, consistent=True, prefetch=0)
            async for customer in search:
                seen.append(customer)
                if len(seen) == 10:
                    await client.customers.create(new_customer(0))
    assert len(seen) == 10


async def test_a_prefetched_page_is_requested_while_the_consumer_works_through_a_page() -> None:
    # The consumer below never awaits; the iterator itself must give fetches their turn.
    async with (
        FakeEnkash(customers=3000, seed=4) as server,
        EnkashClient(server.url, token=server.token) as client,
    ):
        requests_when_page_0_ended = None
        count = 0
        async for _customer in client.customers.search(page_size=1000, prefetch=1):
            count += 1
            if count == 1000:
                requests_when_page_0_ended = server.stats.requests["search"]
    assert count == 3000
    assert requests_when_page_0_ended is not None and requests_when_page_0_ended >= 2


async def test_an_attempt_is_cut_short_so_the_call_keeps_its_deadline() -> None:
    async with FakeEnkash(customers=10, seed=2, latency={"search": 30.0}) as server:
        retry = RetryPolicy(deadline=0.3)
        async with EnkashClient(server.url, token=server.token, retry=retry) as client:
            with pytest.raises(RequestTimeoutError) as info:
                await client.customers.search().first()
    # Given the default 60 s per attempt, it would have waited out the 30 s and succeeded.
    assert "within 60s" not in str(info.value)


async def test_a_drift_warning_points_at_the_caller_not_at_the_library(
    client: EnkashClient, table: Table
) -> None:
    table.changes[1] = insert_three_at_the_top
    with pytest.warns(PaginationDriftWarning) as caught:
        await client.customers.search(page_size=10).collect()  # one frame deeper than async for
    assert caught[0].filename == __file__
