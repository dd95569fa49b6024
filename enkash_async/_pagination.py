"""Lazy offset/limit pagination as an async iterator.

Knows nothing of HTTP or customers: it is given ``fetch(offset, limit)`` returning a
page's items, the reported total and the request id that fetched them, and a ``key``
that identifies an item.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import warnings
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import attrs

from enkash_async._fast import paused_gc
from enkash_async.errors import PaginationDriftWarning, PaginationError
from enkash_async.models import Page

__all__ = ["DEFAULT_PREFETCH", "MAX_PAGE_SIZE", "PAGE_SLACK", "SearchIterator"]

T = TypeVar("T")

MAX_PAGE_SIZE = 5000

# Measured on 2 cores with 50 ms pages of 1000 (customers/s, msgspec reader): 0 -> 16k,
# 1 -> 17k, 2 -> 28k, 3 -> 37k, 4 -> 47k, 8 -> 38k (benchmarks/run.py --only sweep).
DEFAULT_PREFETCH = 4

# While decoding a page, give prefetched pages a turn of the event loop this often
# (every 200 was too rare for a request to get out while a page of 1000 was consumed).
_YIELD_EVERY = 50

# Pages a search may request beyond what its first ``records_count`` calls for: room for
# rows inserted while it runs, never for a server that ignores the offset.
PAGE_SLACK = 2

# A fetch returns a page's raw records (decoded later, by ``decode``), the total and the
# request id of the reply.
Fetch = Callable[[int, int], Awaitable[tuple[list[Any], "int | None", "str | None"]]]


class SearchIterator(Generic[T]):
    """The results of a search, fetched page by page only as they are consumed.

    ``async for item in it`` yields items in order; ``it.pages()`` yields each
    :class:`Page`; ``await it.first()`` and ``await it.collect()`` are shortcuts. Each
    iteration starts again from ``start_offset``. Iteration stops at ``records_count``,
    at a short or empty page, or after ``max_items``. Up to ``prefetch`` pages are
    fetched concurrently once the total is known; items still come strictly in order.

    ``async for`` decodes each record only as it is reached, so a consumer that lets go
    of each item keeps one decoded item alive, not a page of them (``pages()`` decodes
    whole pages). ``key`` identifies a raw record, for ``dedupe`` and loop detection.

    Offsets over a table that changes during the iteration can skip or repeat rows.
    What each mode guarantees:

    - default: every page is what EnKash returned for its offset; a change of
      ``records_count`` between pages is flagged on the page (``count_changed``) and
      warned with :class:`PaginationDriftWarning`, but iteration goes on; a page that
      comes back short although ``records_count`` promises more ends the search with
      the same warning;
    - ``dedupe=True``: no item is yielded twice (one key per item seen is kept);
    - ``consistent=True``: a change of ``records_count`` (or a short page before it is
      reached) raises ``PaginationError``, so an iteration that completes saw one
      unchanging total and skipped nothing silently.

    Whatever the server sends, a search cannot run away: it sends at most the requests
    its first ``records_count`` calls for plus ``PAGE_SLACK`` (2) pages, yields no more
    items than ``max_items`` nor than the largest ``records_count`` reported, and
    raises ``PaginationError`` instead of going past either, for a page of more records
    than the ``limit`` asked for, for a page that repeats any earlier page, and for a
    page whose records are the same as the page before's (records without ids, no
    ``records_count``: nothing else shows a server that ignores the offset).
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        decode: Callable[[Any], T],
        page_size: int,
        start_offset: int = 0,
        max_items: int | None = None,
        prefetch: int = DEFAULT_PREFETCH,
        key: Callable[[Any], Hashable] | None = None,
        dedupe: bool = False,
        consistent: bool = False,
    ) -> None:
        self._fetch = fetch
        self._decode = decode
        self.dedupe = dedupe
        self.consistent = consistent
        self.page_size = page_size
        self.start_offset = start_offset
        self.max_items = max_items
        self.prefetch = prefetch
        self._key = key

    def __repr__(self) -> str:
        return (
            f"SearchIterator(page_size={self.page_size}, start_offset={self.start_offset}, "
            f"max_items={self.max_items}, prefetch={self.prefetch})"
        )

    async def __aiter__(self) -> AsyncIterator[T]:
        decode = self._decode
        pause = self.prefetch > 0
        async with contextlib.aclosing(self._raw_pages()) as pages:
            async for page in pages:
                for index, record in enumerate(page.items):
                    if pause and index and not index % _YIELD_EVERY:
                        # Let the pages being prefetched move on (send, receive) while
                        # this one is decoded: the consumer may never yield to the loop.
                        await asyncio.sleep(0)
                    yield decode(record)

    async def first(self) -> T | None:
        """The first result, or None; fetches a single item."""
        only = SearchIterator(
            self._fetch,
            decode=self._decode,
            page_size=1,
            start_offset=self.start_offset,
            max_items=1,
            key=self._key,
        )
        async with contextlib.aclosing(only.pages()) as pages:
            async for page in pages:
                return page.items[0] if page.items else None
        return None

    async def collect(self) -> list[T]:
        """Every result in a list (mind the memory for large searches)."""
        items: list[T] = []
        async with contextlib.aclosing(self.pages()) as pages:
            async for page in pages:
                items.extend(page.items)
        return items

    async def pages(self) -> AsyncGenerator[Page[T], None]:
        """Yield each page in order, as a :class:`Page` of decoded items."""
        decode = self._decode
        async with contextlib.aclosing(self._raw_pages()) as pages:
            async for page in pages:
                with paused_gc():  # tens of thousands of new objects that form no cycles
                    items = [decode(record) for record in page.items]
                yield attrs.evolve(page, items=items)

    async def _raw_pages(self) -> AsyncGenerator[Page[Any], None]:
        """Each page in order, its items still raw records."""
        cap = None if self.max_items is None else self.start_offset + self.max_items
        total: int | None = None
        position = self.start_offset  # the next offset not yet requested
        in_flight: deque[
            tuple[int, int, asyncio.Task[tuple[list[Any], int | None, str | None]]]
        ] = deque()
        seen_pages: set[tuple[Hashable, ...]] = set()
        seen: set[Hashable] = set()
        previous_items: list[Any] | None = None
        requests = 0
        max_requests: int | None = None  # known once the first total is
        most_items: int | None = None  # the largest total reported, less the start
        items_out = 0

        def request_next() -> None:
            nonlocal position, requests
            if max_requests is not None and requests >= max_requests:
                raise PaginationError(
                    f"the search needs more than the {max_requests} requests its first "
                    f"records_count ({first_total}) calls for, plus {PAGE_SLACK} spare; "
                    "stopping instead of running on"
                )
            limit = self.page_size if cap is None else min(self.page_size, cap - position)
            task = asyncio.ensure_future(self._fetch(position, limit))
            in_flight.append((position, limit, task))
            position += limit
            requests += 1

        first_total: int | None = None
        try:
            while True:
                if not in_flight:
                    if cap is not None and position >= cap:
                        return
                    request_next()
                offset, limit, task = in_flight.popleft()
                items, records_count, request_id = await task
                if len(items) > limit:
                    raise PaginationError(
                        f"offset {offset} returned {len(items)} records for a limit of {limit}: "
                        "the offsets can no longer be trusted"
                    )
                page = _make_page(items, offset, limit, records_count, cap, request_id)
                if records_count is not None:
                    if first_total is None:
                        first_total = records_count
                        first_end = records_count if cap is None else min(cap, records_count)
                        pages = -(-max(0, first_end - self.start_offset) // self.page_size)
                        max_requests = pages + PAGE_SLACK
                    if total is not None and records_count != total:
                        page = attrs.evolve(page, count_changed=True)
                        self._drifted(offset, total, records_count)
                    total = records_count
                    most = max(0, records_count - self.start_offset)
                    most_items = most if most_items is None else max(most_items, most)
                # A page equal to an earlier one is a server ignoring the offset, unless
                # the total changed too: then rows were inserted ahead (drift, reported).
                # Records without ids are compared whole with the page just before (a
                # list compare stops at the first record that differs: cheap when moving).
                if items and items == previous_items and not page.count_changed:
                    raise PaginationError(
                        f"offset {offset} returned the same records as the page before; "
                        "EnKash is not moving through the results, stopping instead of "
                        "looping forever"
                    )
                previous_items = items
                signature = self._signature(items)
                if signature is not None and signature in seen_pages and not page.count_changed:
                    raise PaginationError(
                        f"offset {offset} returned the same page as an earlier offset; "
                        "stopping instead of looping forever"
                    )
                if signature is not None:
                    seen_pages.add(signature)
                if self.dedupe and self._key is not None:
                    page = attrs.evolve(page, items=self._unseen(items, seen))
                items_out += len(page.items)
                if most_items is not None and items_out > most_items:
                    raise PaginationError(
                        f"the search yielded more than the {most_items} records EnKash "
                        "reported; stopping instead of running on"
                    )
                if page.next_offset is None:
                    self._check_short_end(offset, limit, len(items), records_count, cap)
                    yield page
                    return
                if not in_flight:
                    position = page.next_offset
                # Once the total is known every next offset is too: keep `prefetch` pages coming.
                end = total if cap is None else (cap if total is None else min(cap, total))
                requested = False
                while len(in_flight) < self.prefetch and end is not None and position < end:
                    request_next()
                    requested = True
                if requested:
                    await asyncio.sleep(0)  # let the new fetches start sending
                yield page
        finally:
            for _, _, task in in_flight:
                task.cancel()
            if in_flight:
                await asyncio.gather(*(t for _, _, t in in_flight), return_exceptions=True)

    def _drifted(self, offset: int, before: int, now: int) -> None:
        self._report(
            f"records_count changed from {before} to {now} at offset {offset}: the data "
            "changed during the search, so offsets may skip or repeat rows"
        )

    def _check_short_end(
        self, offset: int, limit: int, got: int, records_count: int | None, cap: int | None
    ) -> None:
        """Report a last page that is short although ``records_count`` promises more."""
        if records_count is None or got >= limit:
            return
        end = records_count if cap is None else min(cap, records_count)
        if offset + got < end:
            self._report(
                f"offset {offset} returned {got} of the {limit} rows asked for although "
                f"records_count is {records_count}: the search ends there, and the "
                f"{end - offset - got} rows after it are not read"
            )

    def _report(self, message: str) -> None:
        if self.consistent:
            raise PaginationError(message + "; stopping (consistent=True)")
        warnings.warn(message, PaginationDriftWarning, stacklevel=_caller_level())

    def _unseen(self, items: list[Any], seen: set[Hashable]) -> list[Any]:
        assert self._key is not None
        fresh = []
        for item in items:
            key = self._key(item)
            if key is None or key not in seen:
                seen.add(key)
                fresh.append(item)
        return fresh

    def _signature(self, items: list[Any]) -> tuple[Hashable, ...] | None:
        if self._key is None or not items:
            return None
        first, last = self._key(items[0]), self._key(items[-1])
        if first is None or last is None:
            return None  # items without an identity cannot show a repeated page
        return (first, last, len(items))


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package,
    however deep the call that raises it."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def _make_page(
    items: list[Any],
    offset: int,
    limit: int,
    records_count: int | None,
    cap: int | None,
    request_id: str | None,
) -> Page[Any]:
    after = offset + len(items)
    more = (
        len(items) >= limit > 0
        and (records_count is None or after < records_count)
        and (cap is None or after < cap)
    )
    return Page(
        items=items,
        offset=offset,
        limit=limit,
        records_count=records_count,
        next_offset=after if more else None,
        request_id=request_id,
    )
