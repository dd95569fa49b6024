"""OpenTelemetry spans and metrics, recorded by the real SDK (in-memory exporter and
reader) from calls to the fake EnKash on loopback."""

from __future__ import annotations

import base64
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from _observed import QUICK
from _support import new_customer

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from enkash_async import (
    CustomerSearch,
    EnkashClient,
    LoginError,
    OtelHooks,
    PasswordCredentials,
    RateLimitError,
)
from enkash_async.testing import FakeEnkash, Fault


class Telemetry:
    """An SDK tracer and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.hooks = OtelHooks(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        parent_id = parent.context.span_id
        return [s for s in self.spans() if s.parent is not None and s.parent.span_id == parent_id]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]

    def total(self, metric: str, **attributes: Any) -> int:
        return sum(
            p.value
            for p in self.points(metric)
            if all(p.attributes.get(k) == v for k, v in attributes.items())
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    made = Telemetry()
    yield made
    made.tracer_provider.shutdown()
    made.meter_provider.shutdown()


def _client(server: FakeEnkash, telemetry: Telemetry, **options: Any) -> EnkashClient:
    options.setdefault("credentials", server.credentials)
    return EnkashClient(server.url, hooks=telemetry.hooks, retry=QUICK, **options)


async def test_a_create_retried_then_reconciled_is_one_span_with_a_child_per_attempt(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    server.inject(Fault.status(503, retry_after=0), route="create", times=1)
    server.inject(Fault.after_commit(status=500), route="create", times=1)
    async with _client(server, telemetry) as client:
        await client.customers.create(new_customer("OTEL-1"))
    (create,) = telemetry.named("customers.create")
    assert create.parent is None and create.kind is SpanKind.INTERNAL
    assert create.attributes is not None
    assert create.attributes["enkash.operation"] == "customers.create"
    assert create.attributes["enkash.attempts"] == 3
    assert create.attributes["enkash.reconciled"] is True
    assert create.attributes["enkash.request_id"]
    children = telemetry.children(create)
    assert sorted(s.name for s in children) == [
        "POST /api/v0/customer",
        "POST /api/v0/customer",
        "POST /api/v0/customer/search",
        "login",
    ]
    attempts = sorted(
        (s for s in children if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time or 0
    )
    statuses = [s.attributes["http.response.status_code"] for s in attempts if s.attributes]
    assert statuses == [503, 500, 200]
    first = attempts[0].attributes
    assert first is not None
    assert first["http.request.method"] == "POST"
    assert first["server.address"] == "127.0.0.1"
    assert first["url.template"] == "/api/v0/customer"
    assert first["error.type"] == "503"
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert attempts[1].attributes is not None
    assert attempts[1].attributes["http.request.resend_count"] == 1
    assert [e.name for e in create.events] == ["retry"]  # the 503; the 500 is reconciled
    (login,) = (s for s in children if s.name == "login")
    assert [s.name for s in telemetry.children(login)] == ["POST /oauth/token"]
    assert telemetry.total("enkash.client.reconciled") == 1
    assert telemetry.total("enkash.client.retries", **{"enkash.operation": "customers.create"}) == 1


async def test_a_search_of_three_pages_is_three_page_spans_with_offset_limit_and_records(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    async with _client(server, telemetry) as client:
        async for _ in client.customers.create_many(new_customer(f"P-{n}") for n in range(5)):
            pass
        telemetry.exporter.clear()
        found = [c async for c in client.customers.search(page_size=2, prefetch=0)]
    assert len(found) == 5
    pages = sorted(telemetry.named("customers.search.page"), key=lambda s: s.start_time or 0)
    assert [
        (a["enkash.offset"], a["enkash.limit"], a["enkash.records"])
        for a in (s.attributes or {} for s in pages)
    ] == [(0, 2, 2), (2, 2, 2), (4, 2, 1)]
    for page in pages:
        (request,) = telemetry.children(page)
        assert request.name == "POST /api/v0/customer/search"


async def test_create_many_is_a_parent_span_with_counts(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    async with _client(server, telemetry) as client:
        results = [
            r
            async for r in client.customers.create_many(
                [new_customer("M-1"), new_customer("M-2"), new_customer("M-1")]
            )
        ]
    assert [r.ok for r in results] == [True, True, False]
    (batch,) = telemetry.named("customers.create_many")
    assert batch.attributes is not None
    assert batch.attributes["enkash.created"] == 2 and batch.attributes["enkash.failed"] == 1
    creates = telemetry.named("customers.create")
    assert len(creates) == 2  # the repeated ref is refused unsent: no call
    assert all(s.parent is not None and s.parent.span_id == batch.context.span_id for s in creates)


async def test_a_sync_chunk_job_whose_chunk_another_job_finished_counts_as_repeated(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    async with _client(server, telemetry) as client:
        for repeated in (False, True):
            with client._observer.batch("sync.chunk", run="R", chunk=0) as batch:
                if repeated:  # as the worker marks a job that found its chunk done
                    batch.details["repeated"] = True

    assert telemetry.total("enkash.sync.chunks", **{"enkash.outcome": "ok"}) == 1
    assert telemetry.total("enkash.sync.chunks", **{"enkash.outcome": "repeated"}) == 1


async def test_a_refused_login_is_an_error_span_and_counted(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    wrong = PasswordCredentials("wrong-id", "wrong-secret", "someone", "not-the-password")
    async with _client(server, telemetry, credentials=wrong) as client:
        with pytest.raises(LoginError):
            await client.customers.create(new_customer("OTEL-2"))
    (login,) = telemetry.named("login")
    assert login.status.status_code is StatusCode.ERROR
    assert login.attributes is not None and login.attributes["error.type"] == "LoginError"
    (create,) = telemetry.named("customers.create")
    assert create.attributes is not None and create.attributes["error.type"] == "LoginError"
    assert telemetry.total("enkash.client.logins") == 1


async def test_a_429_is_an_error_attempt_and_a_rate_limited_reply(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    server.inject(Fault.status(429, retry_after=0), route="search")
    async with _client(server, telemetry) as client:
        with pytest.raises(RateLimitError):
            await client.customers.search().first()
    attempts = telemetry.named("POST /api/v0/customer/search")
    assert len(attempts) == QUICK.max_attempts
    assert all(a.attributes and a.attributes["error.type"] == "429" for a in attempts)
    assert telemetry.total("enkash.client.rate_limited", **{"http.response.status_code": 429}) == 4
    durations = [
        p
        for p in telemetry.points("http.client.request.duration")
        if p.attributes.get("http.response.status_code") == 429
    ]
    assert sum(p.count for p in durations) == 4
    assert durations[0].attributes["url.template"] == "/api/v0/customer/search"


async def test_metrics_after_a_known_sequence_of_faults(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    server.inject(Fault.status(503, retry_after=0), route="create", times=2)
    server.inject(Fault.after_commit(status=500), route="create", times=1)
    async with _client(server, telemetry) as client:
        await client.customers.create(new_customer("SEQ-1"))  # 503, 503, 500 -> found
        await client.customers.create(new_customer("SEQ-2"))  # 200
    assert telemetry.total("enkash.client.logins") == 1
    assert telemetry.total("enkash.client.retries") == 2
    assert telemetry.total("enkash.client.rate_limited") == 2
    assert telemetry.total("enkash.client.reconciled") == 1
    requests = telemetry.points("http.client.request.duration")
    by_status: dict[Any, int] = {}
    for point in requests:
        status = point.attributes.get("http.response.status_code")
        by_status[status] = by_status.get(status, 0) + point.count
    # login 200, create 503 503 500, lookup 200, create 200
    assert by_status == {200: 3, 503: 2, 500: 1}
    calls = telemetry.points("enkash.client.operation.duration")
    assert (
        sum(p.count for p in calls if p.attributes["enkash.operation"] == "customers.create") == 2
    )


async def test_no_secret_is_in_any_span_attribute_or_event(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    server.inject(Fault.status(503, retry_after=0), route="create", times=1)
    server.inject(Fault.status(500), route="search", times=4)
    async with _client(server, telemetry) as client:
        await client.customers.create(new_customer("SECRET-2"))
        with pytest.raises(Exception):  # noqa: B017 (any failure: only the spans matter)
            await client.customers.search(CustomerSearch(unique_ref_no="SECRET-2")).first()
    creds = server.credentials
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
    secrets = [creds.client_secret, creds.password, server.token, basic]
    spans = telemetry.spans()
    assert len(spans) > 5
    for span in spans:
        text = repr(span.name) + repr(dict(span.attributes or {})) + repr(span.status)
        text += repr([(e.name, dict(e.attributes or {})) for e in span.events])
        assert not any(secret in text for secret in secrets), span.name
    metrics = telemetry.reader.get_metrics_data()
    assert metrics is not None
    assert not any(secret in metrics.to_json() for secret in secrets)


async def test_with_aiohttp_instrumentation_installed_each_request_is_one_client_span(
    server: FakeEnkash, telemetry: Telemetry
) -> None:
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.aiohttp_client")
    instrumentor = instrumentation.AioHttpClientInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        async with _client(server, telemetry) as client:
            await client.customers.create(new_customer("INSTR-1"))
            await client.customers.search().first()
    finally:
        instrumentor.uninstrument()
    client_spans = [s for s in telemetry.spans() if s.kind is SpanKind.CLIENT]
    # login, create, search: ours, and none of the instrumentation's own beside them
    assert sorted(s.name for s in client_spans) == [
        "POST /api/v0/customer",
        "POST /api/v0/customer/search",
        "POST /oauth/token",
    ]
    assert all(s.instrumentation_scope.name == "enkash_async" for s in client_spans)


async def test_the_client_passes_trace_configs_to_its_session(server: FakeEnkash) -> None:
    seen: list[str] = []

    async def on_request_start(session: Any, context: Any, params: Any) -> None:
        seen.append(params.url.path)

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_request_start)
    async with EnkashClient(
        server.url, token=server.token, trace_configs=[config], retry=QUICK
    ) as client:
        await client.customers.search().first()
    assert seen == ["/api/v0/customer/search"]


_GLOBAL_PROVIDERS = """
import asyncio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from enkash_async import EnkashClient
from enkash_async.testing import FakeEnkash

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

async def main():
    async with FakeEnkash() as server:
        async with EnkashClient(server.url, token=server.token) as client:  # no hooks, no flag
            await client.customers.search().first()

asyncio.run(main())
spans = exporter.get_finished_spans()
print(sorted((s.name, s.instrumentation_scope.name) for s in spans))
names = [m.name for r in reader.get_metrics_data().resource_metrics
         for s in r.scope_metrics for m in s.metrics]
print("http.client.request.duration" in names)
"""


def test_an_application_that_sets_the_global_providers_gets_spans_with_no_flag() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROVIDERS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    spans, has_metric = ran.stdout.strip().splitlines()
    assert spans == str(
        [
            ("POST /api/v0/customer/search", "enkash_async"),
            ("customers.search.page", "enkash_async"),
        ]
    )
    assert has_metric == "True"


_WITHOUT_OPENTELEMETRY = """
import asyncio, sys

# As if not installed: an import of it fails, and find_spec finds nothing.
for name in ("opentelemetry", "opentelemetry.trace", "opentelemetry.metrics"):
    sys.modules[name] = None
from enkash_async import EnkashClient, EnkashError, OtelHooks
from enkash_async.testing import FakeEnkash

async def main():
    async with FakeEnkash() as server:
        async with EnkashClient(server.url, token=server.token) as client:
            await client.customers.search().first()

asyncio.run(main())
try:
    OtelHooks()
except EnkashError as exc:
    print("refused:", exc)
print(sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v))
"""


def test_without_opentelemetry_nothing_is_imported_and_calls_work() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WITHOUT_OPENTELEMETRY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    refused, modules = ran.stdout.strip().splitlines()
    assert "pip install 'enkash-async[otel]'" in refused
    assert modules == "[]"
