"""The checkpoint of a distributed sync: one Redis hash per target and checkpoint name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import redis.asyncio as aioredis

from enkash_async.sync._checkpoint import RefState, SyncTarget
from enkash_async.sync.redis._connection import redis_errors, target_tag, text

__all__ = ["RedisCheckpoint"]

_DONE: Final = "d"
_INTENDED: Final = "i"


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
