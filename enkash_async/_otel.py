"""OpenTelemetry: spans and metrics of every call, through the hooks seam.

As OpenTelemetry asks of libraries, only the API is used (the ``otel`` extra), through
the global tracer and meter providers: an application that configures the SDK sees
spans and metrics with no flag. Without ``opentelemetry-api`` nothing is imported, and
with it but no SDK configured the client skips all of this with one check per call.

One span per logical call (``customers.create``, ``customers.search.page``, ``login``,
a ``customers.create_many`` or ``sync.chunk`` batch as the parent of its calls), and a
CLIENT child span per HTTP attempt named and attributed by the HTTP client semantic
conventions. While an attempt span is current, HTTP instrumentation (such as
``opentelemetry-instrumentation-aiohttp-client``) is suppressed, so each request is one
span, not two.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Mapping
from typing import Any

from enkash_async._hooks import (
    SYNC_CHUNK,
    CallEnded,
    CallStarted,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    RowDone,
    chunk_repeated,
    hook_targets,
)
from enkash_async._version import __version__
from enkash_async.errors import EnkashError

__all__ = ["OtelHooks", "automatic"]

# Keys of this module in a call's shared ``state`` dict.
_SPAN = "enkash_async.otel.span"
_ATTEMPT = "enkash_async.otel.attempt"

# The bucket boundaries the HTTP semantic conventions advise for request durations.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

# While the global providers are not configured, look again at most this often (seconds):
# the look costs an environment lookup, too much for every call.
_RECHECK = 1.0

_OVERLOAD = frozenset({429, 503})


class OtelHooks:
    """Hooks that emit OpenTelemetry spans and metrics (needs ``opentelemetry-api``:
    ``pip install 'enkash-async[otel]'``).

    The client adds one through the global providers by itself whenever
    ``opentelemetry-api`` is importable; pass ``EnkashClient(hooks=OtelHooks(...))`` to
    use other providers (``tracer_provider``, ``meter_provider``; either left out is the
    global one). Raises :class:`~enkash_async.errors.EnkashError` when the API is not
    installed.
    """

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        try:
            from opentelemetry import context, metrics, trace
        except ImportError as exc:
            raise EnkashError(
                "OtelHooks needs the OpenTelemetry API: pip install 'enkash-async[otel]'"
            ) from exc
        self._global = tracer_provider is None and meter_provider is None
        self._context = context
        self._trace = trace
        # Set while an attempt span is current: HTTP instrumentation then makes no span.
        self._suppress_key = getattr(context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None)
        self._client_kind = trace.SpanKind.CLIENT
        self._internal_kind = trace.SpanKind.INTERNAL
        self._error = trace.StatusCode.ERROR
        self._tracer = trace.get_tracer(
            "enkash_async", __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter("enkash_async", __version__, meter_provider=meter_provider)
        self._request_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._operation_duration = meter.create_histogram(
            "enkash.client.operation.duration",
            unit="s",
            description="Duration of logical calls, retries and reconciliation included.",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._retries = meter.create_counter(
            "enkash.client.retries", unit="{retry}", description="Requests sent again."
        )
        self._rate_limited = meter.create_counter(
            "enkash.client.rate_limited",
            unit="{response}",
            description="429 and 503 replies: EnKash refusing load.",
        )
        self._reconciled = meter.create_counter(
            "enkash.client.reconciled",
            unit="{create}",
            description="Creates found by unique_ref_no after an ambiguous failure.",
        )
        self._logins = meter.create_counter(
            "enkash.client.logins", unit="{login}", description="Password logins sent."
        )
        self._rows = meter.create_counter(
            "enkash.sync.rows", unit="{row}", description="Sync rows by outcome."
        )
        self._chunks = meter.create_counter(
            "enkash.sync.chunks",
            unit="{chunk}",
            description="Sync chunk jobs by outcome (ok: once per chunk; repeated; error).",
        )

    def __repr__(self) -> str:
        return f"OtelHooks(global_providers={self._global})"

    def live(self) -> bool:
        """Whether anything would record what this emits: always for given providers;
        for the global ones, once the application configured an SDK provider."""
        return not self._global or _globally_configured()

    # ---- hooks ------------------------------------------------------------------------

    def call_started(self, event: CallStarted) -> None:
        parent = None if event.parent is None else event.parent.get(_SPAN)
        attributes: dict[str, Any] = {"enkash.operation": event.operation}
        _add_details(attributes, event.details)
        event.state[_SPAN] = self._tracer.start_span(
            event.operation,
            context=None if parent is None else self._trace.set_span_in_context(parent),
            kind=self._internal_kind,
            attributes=attributes,
        )
        if event.operation == "login":
            self._logins.add(1)

    def call_ended(self, event: CallEnded) -> None:
        state = event.state
        if _ATTEMPT in state:  # cancelled mid-request: the attempt never got its reply
            self._end_attempt(state, status=None, error_type="cancelled", failed=True)
        span = state.pop(_SPAN, None)
        outcome_attributes = {"enkash.operation": event.operation, "enkash.outcome": event.outcome}
        self._operation_duration.record(event.elapsed, outcome_attributes)
        if event.reconciled:
            self._reconciled.add(1)
        if event.operation == SYNC_CHUNK:
            outcome = "repeated" if chunk_repeated(event) else event.outcome
            self._chunks.add(1, {"enkash.outcome": outcome})
        if span is None:
            return
        attributes: dict[str, Any] = {
            "enkash.attempts": event.attempts,
            "enkash.reconciled": event.reconciled,
        }
        if event.request_id:
            attributes["enkash.request_id"] = event.request_id
        _add_details(attributes, event.details)
        if event.outcome != "ok":
            error_type = "cancelled" if event.error is None else type(event.error).__name__
            attributes["error.type"] = error_type
            span.set_status(self._error, error_type)
        span.set_attributes(attributes)
        span.end()

    def request_sent(self, event: RequestSent) -> None:
        call_span = event.state.get(_SPAN)
        attributes: dict[str, Any] = {
            "http.request.method": event.method,
            "url.template": event.template,
            "server.address": event.server_address,
            "enkash.operation": event.operation,
            "enkash.request_id": event.request_id,
        }
        if event.server_port is not None:
            attributes["server.port"] = event.server_port
        if event.attempt > 1:
            attributes["http.request.resend_count"] = event.attempt - 1
        trace, context = self._trace, self._context
        parent = None if call_span is None else trace.set_span_in_context(call_span)
        span = self._tracer.start_span(
            f"{event.method} {event.template}",
            context=parent,
            kind=self._client_kind,
            attributes=attributes,
        )
        current = trace.set_span_in_context(span, parent)
        if self._suppress_key is not None:
            current = context.set_value(self._suppress_key, True, current)
        token = context.attach(current)
        event.state[_ATTEMPT] = (span, token, time.perf_counter(), attributes)

    def response_received(self, event: ResponseReceived) -> None:
        status = event.status
        if event.error is not None:
            error_type: str | None = type(event.error).__name__
        elif status is None:
            error_type = "cancelled"
        elif status >= 400:
            error_type = str(status)
        else:
            error_type = None
        self._end_attempt(
            event.state, status=status, error_type=error_type, failed=error_type is not None
        )
        attributes: dict[str, Any] = {
            "http.request.method": event.method,
            "url.template": event.template,
            "server.address": event.server_address,
        }
        if event.server_port is not None:
            attributes["server.port"] = event.server_port
        if status is not None:
            attributes["http.response.status_code"] = status
        if error_type is not None:
            attributes["error.type"] = error_type
        self._request_duration.record(event.elapsed, attributes)
        if status in _OVERLOAD:
            self._rate_limited.add(
                1, {"http.response.status_code": status, "enkash.operation": event.operation}
            )

    def retry_scheduled(self, event: RetryScheduled) -> None:
        self._retries.add(1, {"enkash.operation": event.operation})
        span = event.state.get(_SPAN)
        if span is not None:
            span.add_event(
                "retry",
                {
                    "enkash.attempt": event.attempt,
                    "enkash.wait": event.wait,
                    "error.type": type(event.error).__name__,
                },
            )

    def row_done(self, event: RowDone) -> None:
        self._rows.add(1, {"enkash.outcome": event.outcome})

    def _end_attempt(
        self, state: dict[str, Any], *, status: int | None, error_type: str | None, failed: bool
    ) -> None:
        opened = state.pop(_ATTEMPT, None)
        if opened is None:
            return
        span, token, _, _ = opened
        self._context.detach(token)
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
        if failed:
            span.set_status(self._error, error_type)
        span.end()


def _add_details(attributes: dict[str, Any], details: Mapping[str, Any]) -> None:
    for key, value in details.items():
        if isinstance(value, (str, bool, int, float)):
            attributes[f"enkash.{key}"] = value


# ---- the automatic instance ---------------------------------------------------------

_available: bool | None = None
_configured = False
_next_check = 0.0


def automatic(hooks: object | None) -> OtelHooks | None:
    """The hooks a new client adds by itself: through the global providers, when
    ``opentelemetry-api`` is importable and the caller's ``hooks`` hold no :class:`OtelHooks`."""
    global _available
    if any(isinstance(target, OtelHooks) for target in hook_targets(hooks)):
        return None
    if _available is None:
        try:  # find_spec on the top-level name imports nothing
            _available = importlib.util.find_spec("opentelemetry") is not None
        except (ImportError, ValueError):
            _available = False
    if not _available:
        return None
    try:
        return OtelHooks()
    except EnkashError:
        _available = False  # a namespace package without the API
        return None


def _globally_configured() -> bool:
    """Whether the application set an SDK tracer or meter provider (looked at again at
    most every ``_RECHECK`` seconds until it has: providers are set once, never unset)."""
    global _configured, _next_check
    if _configured:
        return True
    now = time.monotonic()
    if now < _next_check:
        return False
    _next_check = now + _RECHECK
    from opentelemetry import metrics, trace

    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    _configured = not isinstance(
        tracer_provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    ) or not (
        isinstance(meter_provider, metrics.NoOpMeterProvider)
        or type(meter_provider).__name__ == "_ProxyMeterProvider"
    )
    return _configured
