"""One request budget for every worker of a sync, kept in Redis (``RedisLimiter``).

The budget of an EnKash target is two Redis keys: a hash with the shared request rate,
concurrency window and the next free send time, and a sorted set of leases (one per
request in flight, scored by its expiry). Each decision is one Lua script, so it is
atomic and timed by Redis's clock (``TIME``), never a worker's:

- admit: drop expired leases; refuse while the leases fill the window; else reserve
  the next send time (spaced ``1/rate`` apart, a GCRA-style token bucket with no burst)
  and add a lease that expires ``lease_ttl`` after it, so a crashed worker's slots
  come back on their own;
- release: remove the lease and adjust the shared AIMD state: a 429/503 halves the
  window and the rate, at most once per ``cooldown`` and only for a request admitted
  after the last cut; a success grows the window by ``1/window`` and the rate by
  ``increase/rate`` (so about ``increase`` requests/s per second at full flow).

A request waits (client side) until its reserved send time; no worker polls for rate.
When Redis cannot be reached, entering a slot raises ``BudgetUnavailableError`` and
the request is not sent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import uuid
from typing import Final

import redis.asyncio as aioredis

from enkash_async.errors import FieldError, ValidationError
from enkash_async.sync._checkpoint import SyncTarget
from enkash_async.sync.redis._connection import (
    BudgetUnavailableError,
    readable,
    redis_errors,
    target_tag,
)

__all__ = ["RedisLimiter", "budget_keys", "budget_state"]

logger = logging.getLogger("enkash_async.sync")

# Poll interval bounds (seconds) while the shared window is full.
_MIN_POLL: Final = 0.005
_MAX_POLL: Final = 0.1

_ADMIT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local max_conc = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local max_rate = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local st = redis.call('HMGET', KEYS[1], 'window', 'rate', 'tat', 'seq')
local window = math.min(tonumber(st[1]) or max_conc, max_conc)
local rate = math.min(tonumber(st[2]) or max_rate, max_rate)
local tat = tonumber(st[3]) or now
local seq = tonumber(st[4]) or 0
local held = redis.call('ZCARD', KEYS[2])
if held >= math.max(1, math.floor(window)) then
  return {0, 0, held}
end
local start = now
if rate > 0 then
  start = math.max(now, tat)
  if start - now > max_delay then
    return {0, math.ceil(start - now - max_delay), held}
  end
  tat = start + 1000 / rate
end
seq = seq + 1
redis.call('HSET', KEYS[1], 'window', window, 'rate', rate, 'tat', tat, 'seq', seq)
redis.call('PEXPIRE', KEYS[1], 86400000)
redis.call('ZADD', KEYS[2], start + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.floor(ttl + max_delay + 1000))
return {1, math.floor(start - now), seq}
"""

_RELEASE: Final = """
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
local outcome = ARGV[2]
if outcome == 'none' then return removed end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local seq = tonumber(ARGV[3])
local max_conc = tonumber(ARGV[4])
local max_rate = tonumber(ARGV[5])
local min_rate = tonumber(ARGV[6])
local cooldown = tonumber(ARGV[7])
local factor = tonumber(ARGV[8])
local increase = tonumber(ARGV[9])
local st = redis.call('HMGET', KEYS[1], 'window', 'rate', 'seq', 'cut_seq', 'cut_at')
local window = math.min(tonumber(st[1]) or max_conc, max_conc)
local rate = math.min(tonumber(st[2]) or max_rate, max_rate)
local cut_seq = tonumber(st[4]) or 0
local cut_at = tonumber(st[5]) or 0
if outcome == 'overload' then
  if seq > cut_seq and now - cut_at >= cooldown then
    window = math.max(1, window * factor)
    if rate > 0 then rate = math.max(min_rate, rate * factor) end
    redis.call('HSET', KEYS[1], 'window', window, 'rate', rate,
               'cut_seq', tonumber(st[3]) or 0, 'cut_at', now)
    return 2
  end
  return removed
end
window = math.min(max_conc, window + 1 / window)
if rate > 0 then rate = math.min(max_rate, rate + increase / rate) end
redis.call('HSET', KEYS[1], 'window', window, 'rate', rate)
return removed
"""

_lease_ids = itertools.count(1)


def budget_keys(target: SyncTarget | str) -> tuple[str, str]:
    """The budget hash and the lease set of ``target`` (or its ``key``)."""
    tag = target_tag(target)
    return f"enkash:budget:{tag}", f"enkash:budget:{tag}:leases"


async def budget_state(
    redis: aioredis.Redis, url: str, target: SyncTarget | str
) -> dict[str, float]:
    """The shared budget of ``target`` now: ``in_flight`` leases, and ``window`` and
    ``rate`` once a request was admitted. Raises ``BudgetUnavailableError``."""
    state, leases = budget_keys(target)
    async with redis_errors(url, "reading the request budget", BudgetUnavailableError):
        values = await redis.hmget(state, ["window", "rate"])
        held = await redis.zcard(leases)
    with readable(url, state):
        found = {
            name: float(v)
            for name, v in zip(("window", "rate"), values, strict=False)
            if v is not None
        }
    return {**found, "in_flight": float(held)}


class RedisLimiter:
    """A :class:`~enkash_async.Limiter` whose budget is shared, through Redis, by every
    client of every process and machine that names the same ``target``.

    At most ``max_concurrency`` requests in flight in total, at most ``rate_limit``
    requests per second in total when set, both adapted by shared AIMD when
    ``adaptive`` (the rate never below ``min_rate``). ``lease_ttl`` (seconds) must
    outlast the longest request: a lease older than that is taken back. A request
    waits at most ``max_delay`` seconds for a reserved send time at a time.

    Entering a slot raises ``BudgetUnavailableError`` (an ``EnkashError``) when Redis
    cannot be reached; the request is then not sent. Releasing never raises: a lease
    Redis could not remove expires by itself.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        url: str,
        target: SyncTarget,
        *,
        max_concurrency: int = 32,
        rate_limit: float | None = None,
        adaptive: bool = True,
        min_rate: float = 1.0,
        decrease_factor: float = 0.5,
        increase: float | None = None,
        cooldown: float = 1.0,
        lease_ttl: float = 90.0,
        max_delay: float = 1.0,
    ) -> None:
        if max_concurrency < 1:
            raise ValidationError([FieldError("max_concurrency", "must be at least 1")])
        if rate_limit is not None and rate_limit <= 0:
            raise ValidationError([FieldError("rate_limit", "must be positive when set")])
        self._redis = redis
        self._url = url
        self.target = target
        self.max_concurrency = max_concurrency
        self.rate_limit = rate_limit
        self.adaptive = adaptive
        self.min_rate = min(min_rate, rate_limit or min_rate)
        self.decrease_factor = decrease_factor
        # Default: from half the rate back to all of it in about two seconds.
        self.increase = increase if increase is not None else (rate_limit or 0.0) / 4
        self.cooldown = cooldown
        self.lease_ttl = lease_ttl
        self.max_delay = max_delay
        self.keys = budget_keys(target)
        self._owner = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._admit = redis.register_script(_ADMIT)
        self._release = redis.register_script(_RELEASE)
        #: Requests admitted, and overload replies reported, by this limiter.
        self.admitted = 0
        self.overloads = 0

    def __repr__(self) -> str:
        return (
            f"RedisLimiter(target={self.target.key!r}, max_concurrency={self.max_concurrency}, "
            f"rate_limit={self.rate_limit}, adaptive={self.adaptive})"
        )

    async def aclose(self) -> None:
        """Close the Redis client this limiter was given."""
        await self._redis.aclose()

    def slot(self) -> _RedisSlot:
        """``async with limiter.slot() as slot``: wait for the shared budget to admit one
        request and hold its lease while it runs."""
        return _RedisSlot(self)

    async def state(self) -> dict[str, float]:
        """The shared state now: ``window``, ``rate`` (0: no rate limit) and ``in_flight``."""
        now = await budget_state(self._redis, self._url, self.target)
        return {
            "window": now.get("window", float(self.max_concurrency)),
            "rate": now.get("rate", float(self.rate_limit or 0.0)),
            "in_flight": now["in_flight"],
        }

    async def _acquire(self, lease: str) -> tuple[float, int]:
        """Wait until admitted; the delay before sending (seconds) and the admission number."""
        poll = _MIN_POLL
        args: list[str | float] = [
            lease,
            self.max_concurrency,
            self.lease_ttl * 1000,
            self.max_delay * 1000,
            self.rate_limit or 0,
        ]
        while True:
            async with redis_errors(
                self._url, "asking the shared request budget", BudgetUnavailableError
            ):
                admitted, wait_ms, seq = await self._admit(keys=self.keys, args=args)
            if admitted:
                self.admitted += 1
                return wait_ms / 1000, int(seq)
            if wait_ms:
                await asyncio.sleep(wait_ms / 1000)
                continue
            # The window is full: another request's release frees it; poll with backoff.
            await asyncio.sleep(poll * (0.5 + random.random()))
            poll = min(_MAX_POLL, poll * 2)

    async def _finish(self, lease: str, outcome: str, seq: int) -> None:
        args: list[str | float] = [
            lease,
            outcome,
            seq,
            self.max_concurrency,
            self.rate_limit or 0,
            self.min_rate,
            self.cooldown * 1000,
            self.decrease_factor,
            self.increase,
        ]
        try:
            async with redis_errors(self._url, "releasing a request lease", BudgetUnavailableError):
                await self._release(keys=self.keys, args=args)
        except BudgetUnavailableError as exc:
            logger.warning("%s; the lease expires by itself", exc)


class _RedisSlot:
    __slots__ = ("_lease", "_limiter", "overload", "sequence", "success")

    def __init__(self, limiter: RedisLimiter) -> None:
        self._limiter = limiter
        self._lease = f"{limiter._owner}:{next(_lease_ids)}"
        self.sequence = 0
        self.overload = False
        self.success = False

    async def __aenter__(self) -> _RedisSlot:
        limiter = self._limiter
        delay, self.sequence = await limiter._acquire(self._lease)
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                await asyncio.shield(limiter._finish(self._lease, "none", self.sequence))
                raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        limiter = self._limiter
        outcome = "none"
        if limiter.adaptive and self.overload:
            outcome = "overload"
            limiter.overloads += 1
        elif limiter.adaptive and self.success:
            outcome = "ok"
        await limiter._finish(self._lease, outcome, self.sequence)

    def overloaded(self) -> None:
        """The request was refused for load (429, 503)."""
        self.overload = True

    def succeeded(self) -> None:
        """The request got a reply that was not an overload."""
        self.success = True
