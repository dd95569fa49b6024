"""The observability tests' fixtures: a fake EnKash on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from enkash_async.testing import FakeEnkash


@pytest.fixture
async def server() -> AsyncIterator[FakeEnkash]:
    async with FakeEnkash() as running:
        yield running
