"""RedisLimiter: one request budget in Redis shared by every limiter of a target."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from _dist import wire_row

from enkash_async import CustomerCreate, EnkashClient, Limiter
from enkash_async.sync._checkpoint import SyncTarget
from enkash_async.sync.redis._budget import RedisLimiter
from enkash_async.sync.redis._connection import BudgetUnavailableError, SyncStoreError, connect
from enkash_async.sync.redis._server import RedisServer
from enkash_async.testing import FakeEnkash

TARGET = SyncTarget.for_user("http://127.0.0.1:1", "api.user")

MakeLimiter = Callable[..., RedisLimiter]


@pytest.fixture
async def make_limiter(redis_url: str) -> AsyncIterator[MakeLimiter]:
    """Limiters of TARGET, each with its own Redis connection (as separate workers have)."""
    made: list[RedisLimiter] = []

    def make(**options: object) -> RedisLimiter:
        limiter = RedisLimiter(connect(redis_url), redis_url, TARGET, **options)  # type: ignore[arg-type]
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


def test_a_redis_limiter_is_a_limiter(make_limiter: MakeLimiter) -> None:
    limiter: Limiter = make_limiter()
    assert repr(limiter).startswith("RedisLimiter(")


async def test_requests_in_flight_never_exceed_the_shared_cap(make_limiter: MakeLimiter) -> None:
    limiters = [make_limiter(max_concurrency=5, adaptive=False) for _ in range(4)]
    in_flight = peak = 0

    async def request(limiter: RedisLimiter) -> None:
        nonlocal in_flight, peak
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    await asyncio.gather(*(request(limiters[i % 4]) for i in range(80)))
    assert peak == 5
    assert sum(limiter.admitted for limiter in limiters) == 80


async def test_the_rate_is_shared_by_every_limiter(
    make_limiter: MakeLimiter, redis: aioredis.Redis
) -> None:
    limiters = [make_limiter(max_concurrency=100, rate_limit=200, adaptive=False) for _ in range(3)]
    async with contextlib.AsyncExitStack() as held:
        await asyncio.gather(*(held.enter_async_context(limiters[i % 3].slot()) for i in range(60)))
        leases = await redis.zrange(limiters[0].keys[1], 0, -1, withscores=True)
    # Each lease expires lease_ttl after its send time, by Redis's clock: one per 5 ms.
    times = sorted(score for _, score in leases)
    assert len(times) == 60
    assert min(b - a for a, b in itertools.pairwise(times)) >= 5 - 0.2


async def test_an_overload_halves_the_shared_window_and_rate_once_per_cooldown(
    make_limiter: MakeLimiter,
) -> None:
    first, second = (
        make_limiter(max_concurrency=40, rate_limit=100),
        make_limiter(max_concurrency=40, rate_limit=100, cooldown=60),
    )
    async with first.slot() as a, second.slot() as b:
        a.overloaded()
        b.overloaded()
    state = await second.state()
    assert (state["window"], state["rate"]) == (20.0, 50.0)


async def test_an_overload_after_the_cooldown_halves_again(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(max_concurrency=40, rate_limit=400, cooldown=0)
    for _ in range(2):
        async with limiter.slot() as slot:
            slot.overloaded()
    state = await limiter.state()
    assert (state["window"], state["rate"]) == (10.0, 100.0)


async def test_successes_grow_the_shared_rate_back_additively(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(max_concurrency=40, rate_limit=400, cooldown=0, increase=100)
    async with limiter.slot() as slot:
        slot.overloaded()
    for _ in range(20):
        async with limiter.slot() as slot:
            slot.succeeded()
    state = await limiter.state()
    # Each success adds increase/rate: 20 successes at about 200/s add about 10.
    assert 205 < state["rate"] < 215
    assert 20 < state["window"] <= 21


async def test_a_crashed_workers_slots_come_back_when_their_leases_expire(
    make_limiter: MakeLimiter,
) -> None:
    crashed = make_limiter(max_concurrency=2, adaptive=False, lease_ttl=0.3)
    for _ in range(2):
        await crashed.slot().__aenter__()  # entered, never left: the worker died
    survivor = make_limiter(max_concurrency=2, adaptive=False, lease_ttl=0.3)
    assert (await survivor.state())["in_flight"] == 2

    async def one_request() -> None:
        async with survivor.slot():
            pass

    await asyncio.wait_for(one_request(), 5)
    assert survivor.admitted == 1


async def test_redis_unreachable_is_a_typed_error_and_nothing_is_sent() -> None:
    server = RedisServer()
    server.start()
    url = server.url
    server.close()  # the port no longer answers
    limiter = RedisLimiter(connect(url), url, TARGET)
    async with (
        FakeEnkash() as fake,
        EnkashClient(fake.url, token=fake.token, limiter=limiter) as client,
    ):
        with pytest.raises(BudgetUnavailableError) as caught:
            await client.customers.create(CustomerCreate.from_dict(wire_row(1)))
        assert fake.stats.requests["create"] == 0
    await limiter.aclose()
    assert isinstance(caught.value, SyncStoreError)
    assert caught.value.url == url
    assert "Redis at" in str(caught.value)
