"""pytest fixtures for testing code that talks to EnKash, against a fake EnKash.

Loaded for every pytest run once enkash_async is installed (a ``pytest11`` entry point),
so importing this module only imports pytest; the server and client load when a
fixture is used.

* ``enkash_server``: a started :class:`~enkash_async.testing.FakeEnkash`; configure it
  with ``@pytest.mark.enkash_server(customers=100, seed=3, ...)`` (FakeEnkash keywords).
* ``enkash_client``: an ``enkash_async.EnkashClient`` logged in to ``enkash_server``.

Both are async fixtures and need pytest-asyncio.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from enkash_async.testing import FakeEnkash

__all__ = ["enkash_client", "enkash_server", "pytest_configure"]

MARKER = "enkash_server"

_asyncio_fixture: Any
try:
    _asyncio_fixture = importlib.import_module("pytest_asyncio").fixture
except ImportError:  # pragma: no cover - the fixtures then say what is missing
    _asyncio_fixture = None


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``enkash_server`` marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): FakeEnkash keyword arguments for the enkash_server fixture",
    )


def _async_fixture(function: Callable[..., Any]) -> Any:
    """``pytest_asyncio.fixture``, or without pytest-asyncio a fixture that fails clearly."""
    if _asyncio_fixture is not None:
        return _asyncio_fixture(function)

    def missing() -> None:
        pytest.fail(f"the {function.__name__} fixture needs pytest-asyncio", pytrace=False)

    return pytest.fixture(name=function.__name__)(missing)


@_async_fixture
async def enkash_server(request: pytest.FixtureRequest) -> AsyncIterator[FakeEnkash]:
    """A started FakeEnkash, configured by the ``enkash_server`` marker's keywords."""
    from enkash_async.testing import FakeEnkash

    marker = request.node.get_closest_marker(MARKER)
    if marker is not None and marker.args:
        pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only", pytrace=False)
    options = dict(marker.kwargs) if marker is not None else {}
    async with FakeEnkash(**options) as server:
        yield server


@_async_fixture
async def enkash_client(enkash_server: FakeEnkash) -> AsyncIterator[Any]:
    """An ``EnkashClient`` for ``enkash_server``, logging in with its credentials."""
    # Imported by name at use: the client is heavier than this plugin should be at startup.
    client_class = importlib.import_module("enkash_async").EnkashClient
    async with client_class(
        base_url=enkash_server.url, credentials=enkash_server.credentials
    ) as client:
        yield client
