"""Prometheus metrics of a sync worker, through the client's hooks seam.

:class:`PrometheusHooks` is a hooks object (see ``enkash_async._hooks``) counting what
the worker's client does: requests by operation and status, 429 replies, retries, rows
by outcome (work done: a row worked twice counts twice) and chunk jobs done (once per
chunk), repeated or failed (the ``sync.chunk`` batch the worker opens around each job).
Its gauges show this worker's requests in flight and the shared budget's rate, window
and leases in flight, read from the limiter every second by :func:`serve_metrics`, which
also serves ``/metrics`` over HTTP.

Each instance has its own ``CollectorRegistry`` (not prometheus-client's global one),
so tests and several workers in one process do not clash. Needs ``prometheus-client``
(the ``sync`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from enkash_async._hooks import (
    SYNC_CHUNK,
    CallEnded,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    RowDone,
    chunk_repeated,
)
from enkash_async.errors import EnkashError

__all__ = ["CHUNK", "MetricsServerError", "PrometheusHooks", "serve_metrics"]

logger = logging.getLogger("enkash_async.sync")

#: The operation of the batch a worker opens around each chunk it runs (its old name here).
CHUNK = SYNC_CHUNK
_ROW_OUTCOMES = ("created", "found", "updated", "unchanged", "rejected", "failed")


def chunk_outcome(event: CallEnded) -> str:
    """How a ``sync.chunk`` job ended: ``done`` (it finished its chunk: once per chunk,
    however often SAQ runs the chunk's job), ``repeated`` (another job of the chunk had
    finished it) or ``failed``."""
    if chunk_repeated(event):
        return "repeated"
    return "done" if event.outcome == "ok" else "failed"


class MetricsServerError(EnkashError):
    """The metrics server cannot listen (the port is in use, or the address is wrong)."""


class _Budget(Protocol):
    async def state(self) -> dict[str, float]: ...


class PrometheusHooks:
    """Hooks counting a worker's requests, rows and chunks in their own ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "enkash_requests",
            "HTTP requests to EnKash by operation and reply status ('error': no reply)",
            ["operation", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "enkash_rate_limited", "429 replies from EnKash", ["operation"], registry=r
        )
        self.retries = Counter(
            "enkash_retries",
            "failed requests scheduled to be sent again",
            ["operation"],
            registry=r,
        )
        self.rows = Counter(
            "enkash_sync_rows",
            "row outcomes of chunk jobs, as work done (a row tried again, in a later pass or "
            "a chunk's job run again, counts again)",
            ["outcome"],
            registry=r,
        )
        self.chunks = Counter(
            "enkash_sync_chunks",
            "chunk jobs ended: done (once per chunk), repeated (another job of the chunk "
            "finished it) or failed",
            ["outcome"],
            registry=r,
        )
        self.in_flight = Gauge(
            "enkash_requests_in_flight", "this worker's requests awaiting a reply", registry=r
        )
        self.budget_rate = Gauge(
            "enkash_budget_rate",
            "the shared budget's current rate, requests per second (0: no rate limit)",
            registry=r,
        )
        self.budget_window = Gauge(
            "enkash_budget_window", "the shared budget's current concurrency window", registry=r
        )
        self.budget_in_flight = Gauge(
            "enkash_budget_in_flight",
            "leases held in the shared budget (requests in flight, all workers)",
            registry=r,
        )
        for outcome in _ROW_OUTCOMES:
            self.rows.labels(outcome)
        for outcome in ("done", "repeated", "failed"):
            self.chunks.labels(outcome)

    def request_sent(self, event: RequestSent) -> None:
        self.in_flight.inc()

    def response_received(self, event: ResponseReceived) -> None:
        self.in_flight.dec()
        status = "error" if event.status is None else str(event.status)
        self.requests.labels(event.operation, status).inc()
        if event.status == 429:
            self.rate_limited.labels(event.operation).inc()

    def retry_scheduled(self, event: RetryScheduled) -> None:
        self.retries.labels(event.operation).inc()

    def row_done(self, event: RowDone) -> None:
        if event.operation == CHUNK:
            self.rows.labels(event.outcome).inc()

    def call_ended(self, event: CallEnded) -> None:
        if event.operation == CHUNK:
            self.chunks.labels(chunk_outcome(event)).inc()

    async def watch_budget(self, budget: _Budget, every: float = 1.0) -> None:
        """Copy ``budget.state()`` into the gauges every ``every`` seconds, forever (a
        failed read keeps the last figures)."""
        while True:
            with contextlib.suppress(EnkashError):
                state = await budget.state()
                self.budget_rate.set(state["rate"])
                self.budget_window.set(state["window"])
                self.budget_in_flight.set(state["in_flight"])
            await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def serve_metrics(
    hooks: PrometheusHooks,
    port: int,
    host: str = "127.0.0.1",
    *,
    budget: _Budget | None = None,
) -> AsyncIterator[int]:
    """Serve ``hooks``' registry at ``http://host:port/metrics`` inside the block (port 0:
    a free one); yields the port, which is also logged. With ``budget`` (a limiter with
    ``state()``, such as ``RedisLimiter``), its figures are read every second. Raises
    :class:`MetricsServerError` when it cannot listen."""
    try:
        server, thread = start_http_server(port, addr=host, registry=hooks.registry)
    except OSError as exc:
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise MetricsServerError(f"the metrics port {host}:{port} {why}") from exc
    chosen = int(server.server_address[1])
    logger.info("metrics on http://%s:%d/metrics", host, chosen)
    watcher: asyncio.Task[Any] | None = None
    if budget is not None:
        watcher = asyncio.create_task(hooks.watch_budget(budget))
    try:
        yield chosen
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join(timeout=2)
