"""RedisCheckpoint for the upsert: per done ref, the customer id and the fingerprint of the
row last written, read back without a write, streamed for --deactivate-missing."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from enkash_async.errors import ValidationError
from enkash_async.sync import CheckpointError, Claim, RefState, SyncTarget
from enkash_async.sync._checkpoint import DEACTIVATED, Written
from enkash_async.sync.redis._checkpoint import RedisCheckpoint

TARGET = SyncTarget.for_user("http://127.0.0.1:1", "api.user")
ID = "KC0000000000000A"


def checkpoint(redis: aioredis.Redis, url: str) -> RedisCheckpoint:
    return RedisCheckpoint(redis, url, TARGET, "default")


async def test_a_done_ref_records_its_customer_id_and_fingerprint(
    redis: aioredis.Redis, redis_url: str
) -> None:
    store = checkpoint(redis, redis_url)
    await store.claim(["A", "B"])
    await store.mark_done("A", ID, "3fa2c1d4e5")

    assert await store.written(["A", "B", "C"]) == {"A": Written(ID, "3fa2c1d4e5")}
    assert await store.states(["A"]) == {"A": RefState.DONE}
    assert await store.claim(["A"]) == {"A": Claim.DONE}
    await store.aclose()


async def test_marking_done_again_replaces_the_fingerprint(
    redis: aioredis.Redis, redis_url: str
) -> None:
    store = checkpoint(redis, redis_url)
    await store.mark_done("A", ID, "old")
    await store.mark_done("A", ID, DEACTIVATED)

    assert await store.written(["A"]) == {"A": Written(ID, DEACTIVATED)}


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (f"d:{ID}", Written(ID, None)),  # an older version's value
        ("d:", Written(None, None)),
        ("d", Written(None, None)),
        ("d::ab12", Written(None, "ab12")),
    ],
)
async def test_values_without_an_id_or_fingerprint_read_as_unknown_parts(
    redis: aioredis.Redis, redis_url: str, value: str, written: Written
) -> None:
    store = checkpoint(redis, redis_url)
    await redis.hset(store.key, "A", value)

    assert await store.written(["A"]) == {"A": written}
    assert await store.states(["A"]) == {"A": RefState.DONE}


async def test_reading_what_was_written_takes_no_intent_and_writes_nothing(
    redis: aioredis.Redis, redis_url: str
) -> None:
    store = checkpoint(redis, redis_url)
    await redis.hset(store.key, "A", f"d:{ID}:ff")

    assert await store.written(["A", "B"]) == {"A": Written(ID, "ff")}
    assert await redis.hgetall(store.key) == {b"A": f"d:{ID}:ff".encode()}
    assert not await redis.exists(f"{store.key}:owners", f"{store.key}:epoch")


async def test_written_reads_more_refs_than_one_round_trip_holds(
    redis: aioredis.Redis, redis_url: str
) -> None:
    store = checkpoint(redis, redis_url)
    await redis.hset(store.key, mapping={f"R{i}": f"d:{ID}:f{i}" for i in range(2500)})

    found = await store.written([f"R{i}" for i in range(2600)])

    assert len(found) == 2500
    assert found["R2499"] == Written(ID, "f2499")


async def test_iter_written_streams_every_done_ref_and_skips_intents(
    redis: aioredis.Redis, redis_url: str
) -> None:
    store = checkpoint(redis, redis_url)
    await store.claim([f"I{i}" for i in range(10)])
    await redis.hset(store.key, mapping={f"R{i}": f"d:{ID}:f{i}" for i in range(3000)})

    streamed = {ref: written async for ref, written in store.iter_written()}

    assert len(streamed) == 3000
    assert streamed["R7"] == Written(ID, "f7")
    await store.aclose()


@pytest.mark.parametrize(
    "value",
    [
        "x:archived",  # a state this version does not know
        "done",  # no separator
        f"d:{ID}:" + "f" * 65,  # a fingerprint over 64 characters
        f"d:{ID}:a b",  # a space in the fingerprint
        "d:" + "K" * 65,  # an id over 64 characters
        f"d:{ID}:ab:cd",  # a third part
        "i:" + "o" * 1200,  # an intent far beyond any owner name
    ],
)
@pytest.mark.parametrize("call", ["written", "states", "iter_written", "claim"])
async def test_a_value_out_of_bounds_or_shape_is_a_checkpoint_error_naming_the_ref(
    redis: aioredis.Redis, redis_url: str, value: str, call: str
) -> None:
    store = checkpoint(redis, redis_url)
    await redis.hset(store.key, "ERP-7", value)

    with pytest.raises(CheckpointError, match=r"ERP-7.*does not know") as caught:
        if call == "iter_written":
            [item async for item in store.iter_written()]
        else:
            await getattr(store, call)(["ERP-7"])
    assert len(str(caught.value)) < 400  # an excerpt, never the whole value
    await store.aclose()


@pytest.mark.parametrize("fingerprint", ["a:b", "", "f" * 65, "tab\there"])
async def test_a_fingerprint_the_value_cannot_hold_is_refused_before_writing(
    redis: aioredis.Redis, redis_url: str, fingerprint: str
) -> None:
    store = checkpoint(redis, redis_url)

    with pytest.raises(ValidationError, match="fingerprint"):
        await store.mark_done("A", ID, fingerprint)
    assert not await redis.exists(store.key)
