"""Talking to Redis for a distributed sync: connections, typed errors, key names.

Every Redis failure (refused, reset, timed out, a script error) becomes a
``SyncStoreError`` naming Redis (by a URL with any password removed) and what was
being done, raised where it happened; nothing of redis-py's escapes.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from enkash_async._urls import redact_url
from enkash_async.errors import EnkashError, excerpt
from enkash_async.sync._checkpoint import SyncTarget

__all__ = [
    "SAFE_EVICTION",
    "BudgetUnavailableError",
    "EvictionPolicyError",
    "StateLostError",
    "SyncStoreError",
    "check_eviction_policy",
    "connect",
    "readable",
    "redacted",
    "redis_errors",
    "target_tag",
    "text",
]

#: Seconds a Redis command may take before it counts as Redis unreachable.
REDIS_TIMEOUT: Final = 5.0


def redacted(url: str) -> str:
    """``url`` with any password (in every form a URL carries one) replaced by ``***``."""
    return redact_url(url)


class SyncStoreError(EnkashError):
    """Redis, which holds a distributed sync's checkpoint, queue and outcomes, failed.

    ``url`` names the Redis (password removed); ``operation`` says what was being done.
    Nothing is sent to EnKash that could not be recorded there first.
    """

    def __init__(self, message: str, *, url: str, operation: str) -> None:
        super().__init__(message)
        self.url = url
        self.operation = operation


class StateLostError(SyncStoreError):
    """Redis no longer holds a run's or a checkpoint's state (flushed, restarted without
    persistence, or evicted): nothing more is sent, and nothing is reported complete.
    Resubmit with ``--lost-state`` (``lost_state=True``): every row not known done is
    looked up in EnKash before it is created."""


class EvictionPolicyError(SyncStoreError):
    """Redis may evict the sync's keys when full (``maxmemory-policy allkeys-*``): it is
    refused before anything is stored or sent; the message says which policies are safe."""


class BudgetUnavailableError(SyncStoreError):
    """The shared request budget in Redis could not be consulted: the request was not sent."""


@asynccontextmanager
async def redis_errors(
    url: str, operation: str, error: type[SyncStoreError] = SyncStoreError
) -> AsyncIterator[None]:
    """Turn a redis-py or socket failure inside the block into ``error``."""
    try:
        yield
    except (RedisError, OSError) as exc:
        where = redacted(url)
        raise error(
            f"Redis at {where} failed while {operation}: {type(exc).__name__}: {exc}",
            url=where,
            operation=operation,
        ) from exc


@contextmanager
def readable(url: str, key: str) -> Iterator[None]:
    """Turn a value of Redis key ``key`` this version cannot read (not a number, not
    UTF-8, not JSON, where enkash_async writes one) into ``SyncStoreError``."""
    try:
        yield
    except (ValueError, TypeError) as exc:  # UnicodeDecodeError and JSON's too
        where = redacted(url)
        raise SyncStoreError(
            f"Redis at {where}: {key} holds a value not written by enkash_async "
            f"({excerpt(str(exc), 120)}); another program or a hand edit changed it: delete "
            "the run's keys (or restore Redis) and submit the file again",
            url=where,
            operation=f"reading {key}",
        ) from exc


#: Eviction policies under which Redis never drops a key without a TTL (the sync's
#: checkpoint, rows and outcomes have none).
SAFE_EVICTION: Final = ("noeviction", "volatile-")


async def check_eviction_policy(redis: aioredis.Redis, url: str) -> str:
    """Redis's ``maxmemory-policy``; raises ``SyncStoreError`` when that policy may evict
    the sync's keys (``allkeys-*``), since rows would then be lost or created twice."""
    async with redis_errors(url, "reading Redis's eviction policy"):
        info = await redis.info("memory")
    policy = str(info.get("maxmemory_policy", "")).lower()
    if not policy or policy.startswith(SAFE_EVICTION):
        return policy
    where = redacted(url)
    limit = info.get("maxmemory_human") or info.get("maxmemory") or "?"
    raise EvictionPolicyError(
        f"Redis at {where} evicts any key when it is full (maxmemory-policy {policy}, "
        f"maxmemory {limit}): it could drop the sync's checkpoint, rows or outcomes, and "
        "rows would be lost or created twice. Give the sync a Redis with maxmemory-policy "
        "noeviction (or a volatile-* policy: the sync's own keys carry no TTL), e.g. "
        "`CONFIG SET maxmemory-policy noeviction`",
        url=where,
        operation="checking the eviction policy",
    )


def connect(url: str, *, max_connections: int = 128) -> aioredis.Redis:
    """A redis-py asyncio client for ``url`` whose commands fail within ``REDIS_TIMEOUT``,
    with at most ``max_connections`` connections (callers must stay below that; one more
    is refused, never waited for).

    Raises ``SyncStoreError`` for a URL redis-py cannot use.
    """
    try:
        # Not BlockingConnectionPool: its lock, taken outside its timeout, has hung
        # callers cancelled mid-command; our callers are bounded anyway.
        pool = aioredis.ConnectionPool.from_url(
            url,
            max_connections=max_connections,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            health_check_interval=30,
        )
    except (ValueError, RedisError) as exc:
        raise SyncStoreError(
            f"not a usable Redis URL {redacted(url)}: {exc}", url=redacted(url), operation="connect"
        ) from exc
    return aioredis.Redis.from_pool(pool)


def text(value: bytes | str) -> str:
    """A Redis reply value as text."""
    return value.decode() if isinstance(value, bytes) else value


def target_tag(target: SyncTarget | str) -> str:
    """A short, secret-free tag for ``target`` (or its ``key``) in Redis key names."""
    key = target if isinstance(target, str) else target.key
    return hashlib.sha256(key.encode()).hexdigest()[:16]
