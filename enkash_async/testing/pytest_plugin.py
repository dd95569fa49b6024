"""pytest fixtures for testing code that talks to EnKash, against a fake EnKash.

Loaded for every pytest run once enkash_async is installed (a ``pytest11`` entry point),
so importing this module only imports pytest; the server and client load when a
fixture is used.

* ``enkash_server``: a started :class:`~enkash_async.testing.FakeEnkash`; configure it
  with ``@pytest.mark.enkash_server(customers=100, seed=3, ...)`` (FakeEnkash keywords).
* ``enkash_client``: an ``enkash_async.EnkashClient`` logged in to ``enkash_server``.

Both are async fixtures and need pytest-asyncio (``pip install 'enkash-async[testing]'``).
They work in its ``strict`` mode as in ``auto``: a coroutine test that asks for one of them
is marked ``@pytest.mark.asyncio`` by this plugin, so it needs no marker of its own.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from enkash_async.testing import FakeEnkash

__all__ = ["enkash_client", "enkash_server", "pytest_configure", "pytest_pycollect_makeitem"]

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


_FIXTURES = frozenset({"enkash_server", "enkash_client"})
_NEEDS = (
    "needs pytest-asyncio, installed and enabled: pip install 'enkash-async[testing]' "
    "(any asyncio_mode works)"
)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> None:
    """Mark a coroutine test asking for ``enkash_server``/``enkash_client`` as asyncio, so
    it runs in pytest-asyncio's strict mode too (nothing changes in auto mode)."""
    if not inspect.iscoroutinefunction(obj) or not collector.funcnamefilter(name):
        return
    try:
        wanted = set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return
    if wanted & _FIXTURES and not _has_asyncio_mark(obj):
        pytest.mark.asyncio(obj)


def _has_asyncio_mark(obj: object) -> bool:
    marks = getattr(obj, "pytestmark", [])
    return any(getattr(mark, "name", None) == "asyncio" for mark in marks)


@pytest.fixture
def _enkash_needs_asyncio(request: pytest.FixtureRequest) -> None:
    """Fail with what to install when pytest-asyncio is missing or disabled."""
    if not request.config.pluginmanager.has_plugin("asyncio"):
        pytest.fail(f"the enkash_server and enkash_client fixtures {_NEEDS}", pytrace=False)


def _async_fixture(function: Callable[..., Any]) -> Any:
    """``pytest_asyncio.fixture``, or without pytest-asyncio a fixture that fails clearly."""
    if _asyncio_fixture is not None:
        return _asyncio_fixture(function)

    def missing() -> None:
        pytest.fail(f"the {function.__name__} fixture {_NEEDS}", pytrace=False)

    return pytest.fixture(name=function.__name__)(missing)


@_async_fixture
async def enkash_server(
    request: pytest.FixtureRequest, _enkash_needs_asyncio: None
) -> AsyncIterator[FakeEnkash]:
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
