"""Using the fake EnKash or a RedisServer out of order raises UsageError, an EnkashError
(and a RuntimeError, as before), never a bare RuntimeError."""

from __future__ import annotations

import pytest

from enkash_async import EnkashError, UsageError
from enkash_async.sync.redis._server import RedisServer
from enkash_async.testing import FakeEnkash, FakeEnkashProcess


async def test_a_fake_enkash_started_twice_raises_usage_error() -> None:
    async with FakeEnkash() as fake:
        with pytest.raises(UsageError, match="starts once"):
            await fake.start()


def test_a_fake_enkash_url_before_start_raises_usage_error() -> None:
    with pytest.raises(UsageError, match="not started"):
        _ = FakeEnkash().url


def test_a_fake_enkash_process_url_before_start_raises_usage_error() -> None:
    with pytest.raises(UsageError, match="has not started"):
        _ = FakeEnkashProcess().url


def test_a_redis_server_url_before_start_raises_usage_error() -> None:
    with pytest.raises(UsageError, match="not started"):
        _ = RedisServer().url


def test_usage_error_is_an_enkash_error_and_a_runtime_error() -> None:
    assert issubclass(UsageError, EnkashError) and issubclass(UsageError, RuntimeError)
