"""What the fake server counts, for tests to assert on."""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs

__all__ = ["ServerStats"]


@attrs.define
class ServerStats:
    """What a :class:`FakeEnkash` has seen, for assertions in tests."""

    #: Requests per route: ``token``, ``create``, ``search``, and ``other`` (unknown paths).
    requests: Counter[str] = attrs.Factory(Counter)
    #: Successful logins.
    logins: int = 0
    #: Refused logins (bad credentials, bad Basic header, wrong grant type, locked account).
    failed_logins: int = 0
    #: Faults that fired, per kind (``status``, ``disconnect``, ``after_commit``, ...).
    faults_injected: Counter[str] = attrs.Factory(Counter)
    #: Requests refused with 429: more than ``max_in_flight`` in flight, or over ``rate_limit``.
    rate_limited: int = 0
    #: Of those, the ones refused for going over ``rate_limit``.
    over_rate: int = 0
    #: Customers stored through ``POST /api/v0/customer`` (after-commit faults included).
    created: int = 0
    #: Requests being handled right now, and the most there ever were at once.
    in_flight: int = 0
    peak_in_flight: int = 0
    #: Changes applied (after-commit faults included) per route: ``update``, ``activate``,
    #: ``deactivate``, ``delete``.
    changed: Counter[str] = attrs.Factory(Counter)
    #: Per field name, how many applied PATCH bodies carried it (``customerId`` aside):
    #: what an upsert sent, e.g. ``{"address": 10000}`` for 10,000 edited addresses.
    patched_fields: Counter[str] = attrs.Factory(Counter)
    #: ``time.monotonic()`` of the first and the latest customer stored (0.0: none yet).
    first_created_at: float = 0.0
    last_created_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """These counters as a JSON-ready dict (what ``GET /_fake/stats`` serves)."""
        return {
            "requests": dict(self.requests),
            "logins": self.logins,
            "failed_logins": self.failed_logins,
            "faults_injected": dict(self.faults_injected),
            "rate_limited": self.rate_limited,
            "over_rate": self.over_rate,
            "created": self.created,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "changed": dict(self.changed),
            "patched_fields": dict(self.patched_fields),
            "first_created_at": self.first_created_at,
            "last_created_at": self.last_created_at,
        }

    def reset(self) -> None:
        """Zero every counter (``in_flight`` keeps counting what is still running)."""
        in_flight = self.in_flight
        self.__init__()  # type: ignore[misc]
        self.in_flight = in_flight
