"""Talking to Redis for a distributed sync: connections, typed errors, the checkpoint.

Every Redis failure (refused, reset, timed out, a script error) becomes a
``SyncStoreError`` naming Redis (by a URL with any password removed) and what was
being done, raised where it happened; nothing of redis-py's escapes.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from enkash_async.errors import EnkashError
from enkash_async.sync._checkpoint import RefState, SyncTarget

__all__ = [
    "BudgetUnavailableError",
    "RedisCheckpoint",
    "SyncStoreError",
    "connect",
    "redacted",
    "redis_errors",
    "target_tag",
    "text",
]

#: Seconds a Redis command may take before it counts as Redis unreachable.
REDIS_TIMEOUT: Final = 5.0
_DONE: Final = "d"
_INTENDED: Final = "i"


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


class SyncStoreError(EnkashError):
    """Redis, which holds a distributed sync's checkpoint, queue and outcomes, failed.

    ``url`` names the Redis (password removed); ``operation`` says what was being done.
    Nothing is sent to EnKash that could not be recorded there first.
    """

    def __init__(self, message: str, *, url: str, operation: str) -> None:
        super().__init__(message)
        self.url = url
        self.operation = operation


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


def target_tag(target: SyncTarget) -> str:
    """A short, secret-free tag for ``target`` in Redis key names."""
    return hashlib.sha256(target.key.encode()).hexdigest()[:16]


class RedisCheckpoint:
    """A :class:`~enkash_async.sync.CheckpointStore` in one Redis hash per target and run.

    The hash ``enkash:ckpt:{target}:{run}`` maps each ``unique_ref_no`` to ``i``
    (intended) or ``d:<customerId>`` (done). Every call is one round trip and raises
    ``SyncStoreError`` when Redis fails. ``lost_state`` (after Redis lost its data) makes
    every ref Redis does not know count as intended, so it is looked up by exact
    ``uniqueRefNo`` before it is created again.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        url: str,
        target: SyncTarget,
        run: str,
        *,
        lost_state: bool = False,
    ) -> None:
        self._redis = redis
        self._url = url
        self.target = target
        self.run = run
        self.key = f"enkash:ckpt:{target_tag(target)}:{run}"
        self.lost_state = lost_state

    def __repr__(self) -> str:
        return f"RedisCheckpoint({self.key!r}, lost_state={self.lost_state})"

    async def states(self, refs: Sequence[str]) -> Mapping[str, RefState]:
        """The state of each of ``refs`` this checkpoint knows."""
        if not refs:
            return {}
        async with redis_errors(self._url, "reading the checkpoint"):
            values = await self._redis.hmget(self.key, list(refs))
        found: dict[str, RefState] = {}
        for ref, value in zip(refs, values, strict=True):
            if value is None:
                if self.lost_state:
                    found[ref] = RefState.INTENDED
            elif text(value).startswith(_DONE):
                found[ref] = RefState.DONE
            else:
                found[ref] = RefState.INTENDED
        return found

    async def mark_intended(self, refs: Sequence[str]) -> None:
        """Record ``refs`` as intended; a done ref stays done (HSETNX)."""
        if not refs:
            return
        async with (
            redis_errors(self._url, "recording intents in the checkpoint"),
            self._redis.pipeline(transaction=True) as pipe,
        ):
            for ref in refs:
                pipe.hsetnx(self.key, ref, _INTENDED)
            await pipe.execute()

    async def mark_done(self, ref: str, customer_id: str | None) -> None:
        """Record that EnKash has ``ref`` (as ``customer_id`` when known)."""
        async with redis_errors(self._url, "recording a completion in the checkpoint"):
            await self._redis.hset(self.key, ref, f"{_DONE}:{customer_id or ''}")

    async def customer_ids(self, refs: Sequence[str]) -> Mapping[str, str | None]:
        """The customer id recorded for each done ref of ``refs``."""
        if not refs:
            return {}
        async with redis_errors(self._url, "reading the checkpoint"):
            values = await self._redis.hmget(self.key, list(refs))
        return {
            ref: (text(value)[2:] or None)
            for ref, value in zip(refs, values, strict=True)
            if value is not None and text(value).startswith(_DONE)
        }

    async def aclose(self) -> None:
        """Nothing to release: the Redis connection belongs to the caller."""
