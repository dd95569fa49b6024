"""Setup for the aiohttp transport's tests: a real aiohttp server on 127.0.0.1 per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _loopback import Loopback, serving


@pytest.fixture
async def loopback() -> AsyncIterator[Loopback]:
    """A real aiohttp server on 127.0.0.1; the test says how it answers."""
    async with serving() as server:
        yield server
