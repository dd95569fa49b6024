"""The observability tests' helpers: a hooks recorder and a client that retries at once."""

from __future__ import annotations

from typing import Any

from enkash_async import (
    CallEnded,
    CallStarted,
    EnkashClient,
    Hooks,
    RequestSent,
    ResponseReceived,
    RetryPolicy,
    RetryScheduled,
    RowDone,
)
from enkash_async.testing import FakeEnkash

QUICK = RetryPolicy(initial_backoff=0.0, max_backoff=0.0, settle_time=0.0)


class Recorder(Hooks):
    """Every event, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def call_started(self, event: CallStarted) -> None:
        event.state["opened"] = True
        self.events.append(event)

    def call_ended(self, event: CallEnded) -> None:
        self.events.append(event)

    def request_sent(self, event: RequestSent) -> None:
        self.events.append(event)

    def response_received(self, event: ResponseReceived) -> None:
        self.events.append(event)

    def retry_scheduled(self, event: RetryScheduled) -> None:
        self.events.append(event)

    def row_done(self, event: RowDone) -> None:
        self.events.append(event)

    def of(self, kind: type[Any], operation: str | None = None) -> list[Any]:
        """The events of one kind (and of one operation, when given)."""
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (operation is None or e.operation == operation)
        ]


def client_for(server: FakeEnkash, hooks: object, **options: Any) -> EnkashClient:
    """A password-login client of ``server`` with ``hooks`` that retries at once."""
    options.setdefault("retry", QUICK)
    options.setdefault("credentials", server.credentials)
    return EnkashClient(server.url, hooks=hooks, **options)
