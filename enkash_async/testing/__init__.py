"""A fake EnKash server for tests and benchmarks, and its pytest fixtures.

:class:`FakeEnkash` serves EnKash's login, create-customer and search-customer APIs on
127.0.0.1 over deterministic synthetic customers, and injects :class:`Fault` s on
demand::

    from enkash_async.testing import FakeEnkash, Fault

    async with FakeEnkash(customers=1_000, seed=7) as server:
        server.inject(Fault.status(503, retry_after=1), route="search", times=2)
        ...  # point a client at server.url with server.credentials

Run it as a process with ``python -m enkash_async.testing --port 8080 --customers 100000``;
it prints one JSON line with ``url``, the credentials and a ready ``token``.
:class:`FakeEnkashProcess` runs that process for a test or benchmark and stops it::

    with FakeEnkashProcess("--customers", "1000") as fake:
        ...  # fake.url, fake.token, fake.environ() for a child process, fake.stats()

The names load on first use, so that pytest importing the fixtures module
(``enkash_async.testing.pytest_plugin``) at startup does not load the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._data import (
        CUSTOMER_FIELDS,
        KEY_CONTACT_FIELDS,
        LEVELS,
        REMINDER_FIELDS,
        Level,
        level_of,
        synthetic_customers,
    )
    from ._envelope import ERROR_TYPES, ErrorType
    from ._faults import ROUTES, Fault, FaultKind, Injection, RetryAfter, Route
    from ._process import FakeEnkashProcess, FakeEnkashProcessError
    from ._server import (
        DEFAULT_CREDENTIALS,
        FakeEnkash,
        ServerStats,
        TokenStyle,
        inject_fault_mix,
        serve,
    )
    from ._validate import DEFAULT_LIMIT, MAX_LIMIT, SORTABLE_FIELDS

__all__ = [
    "CUSTOMER_FIELDS",
    "DEFAULT_CREDENTIALS",
    "DEFAULT_LIMIT",
    "ERROR_TYPES",
    "KEY_CONTACT_FIELDS",
    "LEVELS",
    "MAX_LIMIT",
    "REMINDER_FIELDS",
    "ROUTES",
    "SORTABLE_FIELDS",
    "ErrorType",
    "FakeEnkash",
    "FakeEnkashProcess",
    "FakeEnkashProcessError",
    "Fault",
    "FaultKind",
    "Injection",
    "Level",
    "RetryAfter",
    "Route",
    "ServerStats",
    "TokenStyle",
    "inject_fault_mix",
    "level_of",
    "serve",
    "synthetic_customers",
]

# Where the names live, cheapest first: a name loads the modules up to its own.
_HOMES: tuple[str, ...] = (
    "._process",
    "._envelope",
    "._data",
    "._validate",
    "._faults",
    "._server",
)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for home in _HOMES:
        module = importlib.import_module(home, __name__)
        if name in module.__all__:
            value = getattr(module, name)
            globals()[name] = value  # later lookups skip this function
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")  # pragma: no cover


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
