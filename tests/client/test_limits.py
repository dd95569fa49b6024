"""Client-wide limits: a concurrency window that adapts (AIMD) and a rate limit.

The window halves on an overload reply (429, 503) at most once per window of requests,
and grows by one per window's worth of successes, never past ``max_concurrency`` nor
below one. Unit tests drive :class:`RequestLimiter` directly, without waiting; the
integration test pits a 2,000-customer bulk create against a fake EnKash that answers
429 beyond 50 requests in flight.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _support import BASE, SEARCH_PATH, FakeTransport, Sent, fake_client, reply

from enkash_async import (
    CreateResult,
    CustomerCreate,
    EnkashClient,
    KeyContactCreate,
    RetryPolicy,
    ValidationError,
)
from enkash_async._limits import RequestLimiter
from enkash_async.testing import FakeEnkash

PAGE = {"payload": {"data": [], "recordsCount": 0}, "response_code": 0}


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class Holder:
    """Holds slots of a limiter open from background tasks, and ends them on demand."""

    def __init__(self, limiter: RequestLimiter) -> None:
        self.limiter = limiter
        self.tasks: list[asyncio.Task[None]] = []
        self.admitted = 0
        self._ends: list[asyncio.Future[str]] = []

    def start(self, n: int) -> None:
        for _ in range(n):
            end: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._ends.append(end)
            self.tasks.append(asyncio.ensure_future(self._hold(end)))

    async def _hold(self, end: asyncio.Future[str]) -> None:
        async with self.limiter.slot() as slot:
            self.admitted += 1
            how = await end
            if how == "overloaded":
                slot.overloaded()
            elif how == "succeeded":
                slot.succeeded()

    async def end(self, n: int, how: str) -> None:
        """End the ``n`` oldest admitted slots: "overloaded", "succeeded" or "failed"."""
        open_ends = [e for e in self._ends if not e.done()][:n]
        assert len(open_ends) == n
        for end in open_ends:
            end.set_result(how)
        await _settle()

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def holders() -> AsyncIterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for holder in made:
        await holder.aclose()


def holder_for(holders: list[Holder], limiter: RequestLimiter) -> Holder:
    holder = Holder(limiter)
    holders.append(holder)
    return holder


async def cycle(limiter: RequestLimiter, n: int, how: str) -> None:
    """Run ``n`` requests one after another, each ending ``how``."""
    for _ in range(n):
        async with limiter.slot() as slot:
            if how == "overloaded":
                slot.overloaded()
            else:
                slot.succeeded()


# --------------------------------------------------------------------------- the window


async def test_window_starts_at_max_concurrency_and_admits_that_many(
    holders: list[Holder],
) -> None:
    limiter = RequestLimiter(4)
    held = holder_for(holders, limiter)
    held.start(6)
    await _settle()
    assert limiter.window == 4
    assert held.admitted == 4 and limiter.in_flight == 4
    await held.end(1, "succeeded")
    assert held.admitted == 5  # a waiter takes the freed slot
    assert limiter.in_flight == 4


async def test_an_overload_halves_the_window(holders: list[Holder]) -> None:
    limiter = RequestLimiter(16)
    held = holder_for(holders, limiter)
    held.start(1)
    await _settle()
    await held.end(1, "overloaded")
    assert limiter.window == 8
    assert limiter.overloads == 1


async def test_overloads_from_one_window_halve_it_only_once(holders: list[Holder]) -> None:
    limiter = RequestLimiter(16)
    held = holder_for(holders, limiter)
    held.start(16)
    await _settle()
    await held.end(16, "overloaded")  # all sent before the first cut: one congestion event
    assert limiter.window == 8
    assert limiter.overloads == 16


async def test_an_overload_of_a_request_sent_after_the_cut_halves_again(
    holders: list[Holder],
) -> None:
    limiter = RequestLimiter(16)
    held = holder_for(holders, limiter)
    held.start(2)
    await _settle()
    await held.end(1, "overloaded")
    assert limiter.window == 8
    held.start(1)  # admitted after the cut: it saw the smaller window
    await _settle()
    await held.end(1, "overloaded")  # sent before the cut: ignored
    assert limiter.window == 8
    await held.end(1, "overloaded")
    assert limiter.window == 4


async def test_each_window_of_successes_grows_the_window_by_about_one() -> None:
    limiter = RequestLimiter(100, initial_window=4)
    for _ in range(3):
        before = limiter.window
        await cycle(limiter, math.ceil(before), "succeeded")  # one window's worth
        assert 0.85 < limiter.window - before <= 1.0


async def test_a_grown_window_admits_more_requests(holders: list[Holder]) -> None:
    limiter = RequestLimiter(100, initial_window=4)
    await cycle(limiter, 9, "succeeded")
    held = holder_for(holders, limiter)
    held.start(10)
    await _settle()
    assert held.admitted == int(limiter.window) == 5


async def test_window_never_grows_past_max_concurrency() -> None:
    limiter = RequestLimiter(3)
    await cycle(limiter, 50, "succeeded")
    assert limiter.window == 3


async def test_window_never_shrinks_below_one_and_still_admits_one() -> None:
    limiter = RequestLimiter(64)
    await cycle(limiter, 20, "overloaded")  # one after another: each a new window
    assert limiter.window == 1
    async with limiter.slot():
        assert limiter.in_flight == 1


async def test_window_recovers_after_the_overload_passes() -> None:
    limiter = RequestLimiter(8)
    await cycle(limiter, 1, "overloaded")
    assert limiter.window == 4
    await cycle(limiter, 40, "succeeded")
    assert limiter.window == 8


async def test_a_failed_request_neither_grows_nor_shrinks_the_window() -> None:
    limiter = RequestLimiter(8, initial_window=4)
    with pytest.raises(ConnectionError):
        async with limiter.slot():
            raise ConnectionError("no reply at all")
    assert limiter.window == 4 and limiter.in_flight == 0


async def test_with_adaptive_off_the_window_stays_at_max_concurrency() -> None:
    limiter = RequestLimiter(8, adaptive=False)
    await cycle(limiter, 5, "overloaded")
    assert limiter.window == 8
    assert limiter.overloads == 0


async def test_a_shrunk_window_admits_nothing_until_in_flight_drops_below_it(
    holders: list[Holder],
) -> None:
    limiter = RequestLimiter(8)
    held = holder_for(holders, limiter)
    held.start(12)
    await _settle()
    assert held.admitted == 8
    await held.end(1, "overloaded")  # window 4, 7 still in flight
    assert held.admitted == 8
    await held.end(3, "failed")  # 4 in flight: still none
    assert held.admitted == 8
    await held.end(1, "failed")  # 3 in flight: one more
    assert held.admitted == 9 and limiter.in_flight == 4


async def test_a_cancelled_waiter_passes_its_turn_on(holders: list[Holder]) -> None:
    limiter = RequestLimiter(1)
    held = holder_for(holders, limiter)
    held.start(3)
    await _settle()
    assert held.admitted == 1
    held.tasks[1].cancel()  # the next in line gives up
    await held.end(1, "succeeded")
    assert held.admitted == 2  # the one after it got the slot
    assert limiter.in_flight == 1


async def test_a_woken_waiter_keeps_its_place_against_a_newcomer() -> None:
    limiter = RequestLimiter(1, adaptive=False)
    order: list[str] = []
    release = asyncio.Event()

    async def first_then_newcomer() -> None:
        async with limiter.slot():
            order.append("first")
            await release.wait()
        # The slot just freed went to the waiter, which has not run yet.
        async with limiter.slot():
            order.append("newcomer")

    async def waiter() -> None:
        async with limiter.slot():
            order.append("waiter")

    tasks = [asyncio.ensure_future(first_then_newcomer()), asyncio.ensure_future(waiter())]
    await _settle()
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["first", "waiter", "newcomer"]
    assert limiter.in_flight == 0


async def test_a_waiter_cancelled_after_it_was_woken_hands_its_place_on(
    holders: list[Holder],
) -> None:
    limiter = RequestLimiter(1, adaptive=False)
    held = holder_for(holders, limiter)
    held.start(3)
    await _settle()
    held._ends[0].set_result("succeeded")  # frees the place for the next in line...
    await asyncio.sleep(0)  # ...whose slot is handed over, then:
    held.tasks[1].cancel()  # it gives up before it runs
    await _settle()
    assert held.admitted == 2  # the third got the place
    assert limiter.in_flight == 1


def test_try_acquire_takes_a_free_place_without_waiting() -> None:
    limiter = RequestLimiter(2, adaptive=False)
    assert limiter.try_acquire() == 1
    assert limiter.try_acquire() == 2
    assert limiter.try_acquire() is None  # full: the caller must wait
    assert limiter.in_flight == 2


def test_try_acquire_leaves_a_rate_limited_request_to_wait() -> None:
    limiter = RequestLimiter(10, rate_limit=5)
    assert limiter.try_acquire() is None
    assert limiter.in_flight == 0


async def test_rate_limit_admits_a_burst_of_one_seconds_worth_then_waits(
    holders: list[Holder],
) -> None:
    limiter = RequestLimiter(100, rate_limit=5)
    held = holder_for(holders, limiter)
    held.start(12)
    await _settle()
    assert held.admitted == 5  # the rest wait for the bucket to drain (no real wait here)


async def test_rate_limit_below_one_per_second_works() -> None:
    limiter = RequestLimiter(4, rate_limit=0.5)
    async with limiter.slot():
        assert limiter.in_flight == 1


# --------------------------------------------------------------------------- the client


@pytest.mark.parametrize("kwargs", [{"max_concurrency": 0}, {"rate_limit": 0}, {"rate_limit": -1}])
def test_bad_limits_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EnkashClient(BASE, token="t", **kwargs)


@pytest.mark.parametrize("status", [429, 503])
async def test_client_overload_reply_halves_the_window(status: int) -> None:
    transport = FakeTransport().answer(
        SEARCH_PATH, reply({"errorResponse": {}}, status), reply(PAGE)
    )
    async with fake_client(transport, max_concurrency=16) as client:
        assert await client.customers.search().collect() == []
        assert client.limiter.overloads == 1
        assert 8 <= client.limiter.window < 9  # halved, then one success
        assert client.stats.rate_limited == 1


async def test_client_other_errors_do_not_shrink_the_window() -> None:
    transport = FakeTransport()
    for status in (500, 502, 504):
        transport.answer(SEARCH_PATH, reply({"errorResponse": {}}, status))
    transport.answer(SEARCH_PATH, reply(PAGE))
    async with fake_client(transport, max_concurrency=16) as client:
        await client.customers.search().collect()
        assert client.limiter.window == 16 and client.limiter.overloads == 0


async def test_client_max_concurrency_bounds_all_calls_together() -> None:
    async with (
        FakeEnkash(seed=3, latency={"create": 0.005, "search": 0.005}) as server,
        EnkashClient(server.url, token=server.token, max_concurrency=4) as client,
    ):

        async def searches() -> None:
            for _ in range(5):
                await client.customers.search(page_size=1, max_items=1).collect()

        async def bulk() -> list[CreateResult]:
            inputs = [new_customer(i) for i in range(24)]
            return [r async for r in client.customers.create_many(inputs, concurrency=50)]

        creating = asyncio.ensure_future(bulk())
        await asyncio.gather(*(searches() for _ in range(6)))
        results = await creating
        assert server.stats.peak_in_flight == 4
        assert server.stats.requests == {"create": 24, "search": 30}
        assert all(r.ok for r in results)


async def test_client_rate_limit_holds_back_requests_past_the_burst() -> None:
    answered = 0

    def page(sent: Sent) -> Any:
        nonlocal answered
        answered += 1
        return reply(PAGE)

    transport = FakeTransport().answer(SEARCH_PATH, page, repeat=True)
    async with EnkashClient(BASE, token="t", rate_limit=3, transport=transport) as client:
        calls = [asyncio.ensure_future(client.customers.search().collect()) for _ in range(8)]
        await _settle()
        assert answered == 3
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)


# --------------------------------------------------------------------------- AIMD vs EnKash


CREATES = 1000


def new_customer(i: int) -> CustomerCreate:
    return CustomerCreate(
        legal_name=f"Company {i}",
        customer_key_contacts=[
            KeyContactCreate(
                name="Asha Rao", legal_name=f"Company {i}", mobile="9876543210", deleted=False
            )
        ],
        unique_ref_no=f"ERP-{i:07d}",
    )


async def bulk_against_a_limit(*, adaptive: bool) -> dict[str, Any]:
    """1,000 creates at concurrency 200 against an EnKash that takes 50 at once (the
    window settles within the first few hundred: more rows prove nothing more)."""
    policy = RetryPolicy(
        initial_backoff=0.001,
        max_backoff=0.01,
        max_retry_after=0.01,  # the server says Retry-After: 1; tests do not wait that long
        max_attempts=50,
        deadline=None,
    )
    async with (
        FakeEnkash(seed=4, max_in_flight=50, latency={"create": 0.002}) as server,
        EnkashClient(
            server.url,
            token=server.token,
            retry=policy,
            max_concurrency=200,
            max_connections=200,
            adaptive_concurrency=adaptive,
        ) as client,
    ):
        started = time.perf_counter()
        results = [
            r
            async for r in client.customers.create_many(
                (new_customer(i) for i in range(CREATES)), concurrency=200
            )
        ]
        elapsed = time.perf_counter() - started
        refs = Counter(c["uniqueRefNo"] for c in server.customers)
        return {
            "results": results,
            "refs": refs,
            "created": server.stats.created,
            "rate_limited": server.stats.rate_limited,
            "window": client.limiter.window,
            "elapsed": elapsed,
        }


@pytest.mark.slow
async def test_adaptive_concurrency_provokes_fewer_429s_and_creates_each_customer_once() -> None:
    runs = {adaptive: await bulk_against_a_limit(adaptive=adaptive) for adaptive in (True, False)}
    for run in runs.values():
        assert [r.index for r in run["results"]] == list(range(CREATES))
        assert all(r.ok for r in run["results"])
        assert run["created"] == CREATES
        assert set(run["refs"].values()) == {1}
        assert run["refs"].keys() == {f"ERP-{i:07d}" for i in range(CREATES)}
    on, off = runs[True], runs[False]
    assert on["rate_limited"] > 0  # the server was pushed to its limit ...
    assert on["rate_limited"] < off["rate_limited"]  # ... and adaptive backed off
    assert on["window"] < 200
    print(
        f"\n[limits] {CREATES:,} creates, concurrency 200 vs max_in_flight 50: 429s adaptive "
        f"{on['rate_limited']} (window {on['window']:.0f}, {on['elapsed']:.2f}s) vs fixed "
        f"{off['rate_limited']} ({off['elapsed']:.2f}s)"
    )
