"""The client over a scripted transport: ``transport`` answers, ``client`` sends through it.

A module whose client differs (credentials, retry policy) overrides ``client_options``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from _support import FakeTransport, fake_client

from enkash_async import EnkashClient


@pytest.fixture
def transport() -> FakeTransport:
    """The transport under the test's client, answering from its script."""
    return FakeTransport()


@pytest.fixture
def client_options() -> dict[str, Any]:
    """Keyword arguments of ``fake_client`` for this module's client (none: a static token,
    retries that never wait)."""
    return {}


@pytest.fixture
async def client(
    transport: FakeTransport, client_options: dict[str, Any]
) -> AsyncIterator[EnkashClient]:
    async with fake_client(transport, **client_options) as made:
        yield made
