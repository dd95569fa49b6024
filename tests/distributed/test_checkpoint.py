"""RedisCheckpoint and the run records: intent and done per ref, outcomes per row."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from enkash_async.sync import (
    CheckpointError,
    CheckpointStore,
    Claim,
    EvictionPolicyError,
    RefState,
    StateLostError,
    SyncTarget,
)
from enkash_async.sync.redis._checkpoint import RedisCheckpoint
from enkash_async.sync.redis._connection import (
    SyncStoreError,
    check_eviction_policy,
    connect,
    redacted,
)
from enkash_async.sync.redis._runs import RunStore, StoredOutcome
from enkash_async.sync.redis._server import RedisServer

TARGET = SyncTarget.for_user("http://127.0.0.1:1", "api.user")


def checkpoint(
    redis: aioredis.Redis, url: str, target: SyncTarget = TARGET, run: str = "default"
) -> RedisCheckpoint:
    return RedisCheckpoint(redis, url, target, run)


async def test_a_ref_is_intended_then_done(redis: aioredis.Redis, redis_url: str) -> None:
    store: CheckpointStore = checkpoint(redis, redis_url)
    await store.mark_intended(["A", "B"])
    await store.mark_done("A", "CUST-1")
    assert await store.states(["A", "B", "C"]) == {"A": RefState.DONE, "B": RefState.INTENDED}


async def test_marking_a_done_ref_intended_keeps_it_done(
    redis: aioredis.Redis, redis_url: str
) -> None:
    store = checkpoint(redis, redis_url)
    await store.mark_done("A", "CUST-1")
    await store.mark_intended(["A"])
    assert await store.states(["A"]) == {"A": RefState.DONE}
    assert await store.customer_ids(["A"]) == {"A": "CUST-1"}


async def test_targets_and_runs_never_share_state(redis: aioredis.Redis, redis_url: str) -> None:
    fake = SyncTarget.for_user("http://127.0.0.1:2", "api.user")
    await checkpoint(redis, redis_url).mark_done("A", "CUST-1")
    assert await checkpoint(redis, redis_url, target=fake).states(["A"]) == {}
    assert await checkpoint(redis, redis_url, run="other").states(["A"]) == {}


async def test_after_lost_state_every_unknown_ref_counts_as_intended(
    redis: aioredis.Redis, redis_url: str
) -> None:
    store = checkpoint(redis, redis_url)
    await store.mark_done("A", "CUST-1")
    store.lost_state = True
    assert await store.states(["A", "B"]) == {"A": RefState.DONE, "B": RefState.INTENDED}


async def test_redis_down_is_a_sync_store_error_naming_redis() -> None:
    server = RedisServer()
    server.start()
    url = server.url
    server.close()
    redis = connect(url)
    with pytest.raises(SyncStoreError, match=r"Redis at redis://127\.0\.0\.1") as caught:
        await checkpoint(redis, url).mark_intended(["A"])
    await redis.aclose()
    assert caught.value.operation == "claiming intents in the checkpoint"


def test_a_redis_url_password_never_appears_in_messages() -> None:
    assert redacted("redis://user:s3cret@host:6380/0") == "redis://user:***@host:6380/0"


async def test_a_redone_rows_outcome_replaces_its_first_and_counts_follow(
    redis: aioredis.Redis, redis_url: str
) -> None:
    run = RunStore(redis, redis_url, "R")
    await run.write_meta({"rows": 2, "chunks": 1, "ready": "1"})
    failed = StoredOutcome(1, "failed", {"line": 1, "error": "ServerError"})
    await run.record(0, [failed, StoredOutcome(2, "created")])
    await run.record(0, [StoredOutcome(1, "created")])
    status = await run.status()
    assert status.counts == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "found": 0,
        "rejected": 0,
        "failed": 0,
    }
    assert [item.outcome async for item in run.outcomes()] == ["created", "created"]


async def test_a_found_in_the_checkpoint_keeps_the_created_recorded_before_a_crash(
    redis: aioredis.Redis, redis_url: str
) -> None:
    run = RunStore(redis, redis_url, "R")
    await run.write_meta({"rows": 1, "chunks": 1, "ready": "1"})
    await run.record(0, [StoredOutcome(1, "created")])
    await run.record(0, [StoredOutcome(1, "found", keep_existing=True)])
    assert (await run.status()).counts["created"] == 1
    assert [item.outcome async for item in run.outcomes()] == ["created"]


async def test_a_ref_another_live_store_intends_is_held_until_it_is_done(
    redis: aioredis.Redis, redis_url: str
) -> None:
    first, second = checkpoint(redis, redis_url), checkpoint(redis, redis_url)
    assert await first.claim(["A", "B"]) == {"A": Claim.NEW, "B": Claim.NEW}
    assert await second.claim(["A", "C"]) == {"A": Claim.HELD, "C": Claim.NEW}
    await first.mark_done("A", "CUST-1")
    assert await second.claim(["A"]) == {"A": Claim.DONE}
    await first.aclose()
    await second.aclose()


async def test_a_dead_stores_intents_are_reclaimed_once_its_lease_runs_out(
    redis: aioredis.Redis, redis_url: str
) -> None:
    dead = RedisCheckpoint(redis, redis_url, TARGET, "default", lease=0.3)
    await dead.claim(["A"])
    dead._renewer.cancel()  # type: ignore[union-attr]  # as if its process died
    alive = checkpoint(redis, redis_url)
    assert await alive.claim(["A"]) == {"A": Claim.HELD}
    await asyncio.sleep(0.5)
    assert await alive.claim(["A"]) == {"A": Claim.RECLAIMED}
    await alive.aclose()


async def test_a_closed_stores_intents_are_reclaimed_at_once(
    redis: aioredis.Redis, redis_url: str
) -> None:
    first = checkpoint(redis, redis_url)
    await first.claim(["A"])
    await first.aclose()
    assert await checkpoint(redis, redis_url).claim(["A"]) == {"A": Claim.RECLAIMED}


@pytest.mark.parametrize("call", ["states", "claim"])
async def test_a_value_this_version_does_not_know_is_a_checkpoint_error(
    redis: aioredis.Redis, redis_url: str, call: str
) -> None:
    store = checkpoint(redis, redis_url)
    await redis.hset(store.key, "A", "x:archived")

    with pytest.raises(CheckpointError, match="does not know"):
        await getattr(store, call)(["A"])


async def test_a_checkpoint_flushed_from_redis_is_state_lost_not_new_refs(
    redis: aioredis.Redis, redis_url: str
) -> None:
    store = checkpoint(redis, redis_url)
    await store.claim(["A"])
    await store.mark_done("A", "CUST-1")
    await redis.flushall()

    with pytest.raises(StateLostError, match="--lost-state"):
        await store.claim(["A", "B"])
    assert await redis.hlen(store.key) == 0  # nothing was claimed as new


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
async def test_a_redis_that_evicts_any_key_is_refused(
    redis: aioredis.Redis, redis_url: str, policy: str
) -> None:
    await redis.config_set("maxmemory-policy", policy)
    try:
        with pytest.raises(EvictionPolicyError, match=f"{policy}.*noeviction"):
            await check_eviction_policy(redis, redis_url)
    finally:
        await redis.config_set("maxmemory-policy", "noeviction")


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru", "volatile-ttl"])
async def test_a_redis_that_never_evicts_keys_without_a_ttl_is_accepted(
    redis: aioredis.Redis, redis_url: str, policy: str
) -> None:
    await redis.config_set("maxmemory-policy", policy)
    try:
        assert await check_eviction_policy(redis, redis_url) == policy
    finally:
        await redis.config_set("maxmemory-policy", "noeviction")
