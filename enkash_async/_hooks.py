"""Hooks: what a caller is told about every logical call and every HTTP attempt.

``EnkashClient(hooks=...)`` takes any object with some of :class:`Hooks`' methods
(subclass :class:`Hooks` for no-op defaults), or a list of such objects. Each call's
events share one ``state`` dict, so a hook can open a span or timer in ``call_started``
and close it in ``call_ended``. Events carry no secret (no header, no body, no query
string). A hook that raises is logged once per hook method and never breaks the call.

:class:`Observer` is the one place the client reports to: the hooks, OpenTelemetry
(``_otel``, when the application configured it) and the log lines of ``_log``. With
nothing watching it reports nothing and costs one check per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final, Protocol

import attrs

from enkash_async import _log
from enkash_async._retry import RetryEvent
from enkash_async.errors import EnkashError

__all__ = [
    "SYNC_CHUNK",
    "CallEnded",
    "CallRecord",
    "CallStarted",
    "Hooks",
    "Observer",
    "RequestSent",
    "ResponseReceived",
    "RetryScheduled",
    "RowDone",
    "chunk_repeated",
    "hook_targets",
]

logger = logging.getLogger("enkash_async")


@attrs.frozen(kw_only=True)
class CallStarted:
    """A logical call (``operation`` such as ``customers.create``) begins. ``state`` is
    this call's own dict, shared by all of its events; ``parent`` is the ``state`` of the
    call it runs inside (a ``create_many`` or sync chunk, or the call a login serves),
    else None; ``details`` says what the call is about (a search page's ``offset`` and
    ``limit``)."""

    operation: str
    details: Mapping[str, Any] = attrs.field(factory=dict)
    state: dict[str, Any] = attrs.field(repr=False)
    parent: dict[str, Any] | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class CallEnded:
    """A logical call ended: ``outcome`` "ok", "error" (then ``error``) or "cancelled",
    the HTTP ``attempts`` it sent, ``elapsed`` seconds, whether the create was
    ``reconciled`` (found by ``unique_ref_no`` after an ambiguous failure), the last
    ``request_id``, and ``details`` as they ended (a search page's ``records``, a batch's
    counts by outcome)."""

    operation: str
    outcome: str
    attempts: int
    elapsed: float
    reconciled: bool
    request_id: str | None
    error: EnkashError | None
    details: Mapping[str, Any] = attrs.field(factory=dict)
    state: dict[str, Any] = attrs.field(repr=False)
    parent: dict[str, Any] | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class RequestSent:
    """An HTTP request of ``operation`` is about to be sent: ``method``, ``path`` (never
    a query string), ``template`` (the path with ids as ``{customerId}``), the server's
    ``server_address`` and ``server_port``, ``attempt`` (1-based, per logical call) and
    its ``request_id``."""

    operation: str
    method: str
    path: str
    template: str
    server_address: str
    server_port: int | None
    attempt: int
    request_id: str
    state: dict[str, Any] = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class ResponseReceived:
    """The reply to a :class:`RequestSent` (or its failure): ``status`` (None when no reply
    came: then ``error``, or neither when the call was cancelled), ``request_id``, body
    ``bytes`` and ``elapsed`` seconds."""

    operation: str
    method: str
    path: str
    template: str
    server_address: str
    server_port: int | None
    attempt: int
    status: int | None
    request_id: str
    bytes: int
    elapsed: float
    error: EnkashError | None
    state: dict[str, Any] = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class RetryScheduled:
    """A failed ``attempt`` of ``operation`` will be retried after ``wait`` seconds."""

    operation: str
    attempt: int
    wait: float
    error: EnkashError
    state: dict[str, Any] = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class RowDone:
    """One row of a batch (a sync chunk) got its ``outcome`` ("created", "failed", ...)."""

    operation: str
    outcome: str
    state: dict[str, Any] = attrs.field(repr=False)


#: The batch a distributed sync worker opens around each chunk's job.
SYNC_CHUNK: Final = "sync.chunk"


def chunk_repeated(event: CallEnded) -> bool:
    """A :data:`SYNC_CHUNK` job that ended well without syncing its chunk, because another
    job of the chunk had (SAQ can run one job twice): counted apart, so "done" counts each
    chunk once."""
    return event.outcome == "ok" and bool(event.details.get("repeated"))


class Hooks(Protocol):
    """What ``EnkashClient(hooks=...)`` calls. Every method is optional: subclass this for
    no-op defaults, or pass any object with the methods you want. Hooks run inline on
    the event loop, so keep them quick; an exception from one is logged once and ignored.
    """

    def call_started(self, event: CallStarted) -> None:
        """A logical call begins."""

    def call_ended(self, event: CallEnded) -> None:
        """A logical call ended, successfully or not."""

    def request_sent(self, event: RequestSent) -> None:
        """One HTTP request is about to be sent."""

    def response_received(self, event: ResponseReceived) -> None:
        """One HTTP request got its reply, or failed."""

    def retry_scheduled(self, event: RetryScheduled) -> None:
        """A failed request will be sent again after a wait."""

    def row_done(self, event: RowDone) -> None:
        """A row of a sync chunk got its outcome."""


_NAMES = (
    "call_started",
    "call_ended",
    "request_sent",
    "response_received",
    "retry_scheduled",
    "row_done",
)

# The logical call the running task is inside, if anything observes it.
_CURRENT: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "enkash_async_call", default=None
)
# The batch (create_many, sync chunk) whose calls the running task makes, if observed.
_PARENT: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "enkash_async_batch", default=None
)


class _Sink:
    """One hooks object: its methods by event name, and which of them failed already."""

    __slots__ = ("failed", "methods", "target")

    def __init__(self, target: object) -> None:
        self.target = target
        found = {name: getattr(target, name, None) for name in _NAMES}
        self.methods = {name: fn for name, fn in found.items() if callable(fn)}
        self.failed: set[str] = set()

    def emit(self, name: str, event: object) -> None:
        hook = self.methods.get(name)
        if hook is None:
            return
        try:
            hook(event)
        except Exception as exc:
            if name not in self.failed:  # once per hook method, not once per request
                self.failed.add(name)
                logger.warning(
                    "the %s hook of %s raised %s: %s; ignored (reported once)",
                    name,
                    type(self.target).__name__,
                    type(exc).__name__,
                    exc,
                )


@attrs.define(slots=True, eq=False)
class CallRecord:
    """One observed logical call (or batch): what its attempts and its end report."""

    observer: Observer
    operation: str
    sinks: tuple[_Sink, ...]
    parent: CallRecord | None
    started: float
    details: dict[str, Any] = attrs.Factory(dict)
    batch: bool = False
    state: dict[str, Any] = attrs.Factory(dict)
    attempts: int = 0
    reconciled: bool = False
    request_id: str | None = None
    _token: contextvars.Token[CallRecord | None] | None = None

    def __enter__(self) -> CallRecord:
        # A batch is the parent of the calls made inside it; a call is the current one.
        self._token = (_PARENT if self.batch else _CURRENT).set(self)
        self.open()
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        if self._token is not None:
            (_PARENT if self.batch else _CURRENT).reset(self._token)
            self._token = None
        self.close(error)

    def open(self) -> None:
        """Report the start (``with`` does this; a batch in a generator calls it)."""
        self._emit(
            "call_started",
            CallStarted(
                operation=self.operation,
                details=dict(self.details),
                state=self.state,
                parent=None if self.parent is None else self.parent.state,
            ),
        )

    def close(self, error: BaseException | None) -> None:
        """Report the end, with ``error`` if the call raised."""
        failure = error if isinstance(error, EnkashError) else None
        if error is None:
            outcome = "ok"
        elif isinstance(error, (asyncio.CancelledError, GeneratorExit)):
            outcome = "cancelled"
        else:
            outcome = "error"
        elapsed = time.perf_counter() - self.started
        self._emit(
            "call_ended",
            CallEnded(
                operation=self.operation,
                outcome=outcome,
                attempts=self.attempts,
                elapsed=elapsed,
                reconciled=self.reconciled,
                request_id=self.request_id if failure is None else failure_id(failure, self),
                error=failure,
                details=dict(self.details),
                state=self.state,
                parent=None if self.parent is None else self.parent.state,
            ),
        )
        if self.attempts > 1 or self.reconciled:
            logger.info(
                "%s: %s after %d requests in %.0f ms%s (request %s)",
                self.operation,
                "succeeded" if error is None else f"failed ({type(error).__name__})",
                self.attempts,
                elapsed * 1000,
                ", reconciled by unique_ref_no" if self.reconciled else "",
                self.request_id,
            )

    def _emit(self, name: str, event: object) -> None:
        for sink in self.sinks:
            sink.emit(name, event)

    def sent(self, method: str, path: str, request_id: str, template: str | None = None) -> float:
        """Count and report one request about to be sent; its start time."""
        self.attempts += 1
        self.request_id = request_id
        if self.sinks:
            observer = self.observer
            self._emit(
                "request_sent",
                RequestSent(
                    operation=self.operation,
                    method=method,
                    path=path,
                    template=template or path,
                    server_address=observer.server_address,
                    server_port=observer.server_port,
                    attempt=self.attempts,
                    request_id=request_id,
                    state=self.state,
                ),
            )
        return time.perf_counter()

    def received(
        self,
        method: str,
        path: str,
        request_id: str,
        started: float,
        *,
        status: int | None,
        size: int,
        error: EnkashError | None,
        template: str | None = None,
    ) -> None:
        """Report the reply (or failure) of the request :meth:`sent` started."""
        elapsed = time.perf_counter() - started
        if self.sinks:
            observer = self.observer
            self._emit(
                "response_received",
                ResponseReceived(
                    operation=self.operation,
                    method=method,
                    path=path,
                    template=template or path,
                    server_address=observer.server_address,
                    server_port=observer.server_port,
                    attempt=self.attempts,
                    status=status,
                    request_id=request_id,
                    bytes=size,
                    elapsed=elapsed,
                    error=error,
                    state=self.state,
                ),
            )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s -> %s (request %s, attempt %d, %.1f ms)%s",
                self.operation,
                method,
                path,
                status if error is None else type(error).__name__,
                request_id,
                self.attempts,
                elapsed * 1000,
                _log.body_excerpt(error),
            )

    def retrying(self, event: RetryEvent) -> None:
        """Report a retry about to wait (the retry loop's own log line says it)."""
        if self.sinks:
            self._emit(
                "retry_scheduled",
                RetryScheduled(
                    operation=self.operation,
                    attempt=event.attempt,
                    wait=event.wait,
                    error=event.error,
                    state=self.state,
                ),
            )

    def row(self, outcome: str) -> None:
        """Count one row of this batch with ``outcome``, and report it."""
        self.details[outcome] = self.details.get(outcome, 0) + 1
        self._emit("row_done", RowDone(operation=self.operation, outcome=outcome, state=self.state))


def failure_id(error: EnkashError, record: CallRecord) -> str | None:
    """The request id an error names, else the call's last one."""
    return getattr(error, "request_id", None) or record.request_id


def hook_targets(hooks: object | None) -> list[object]:
    """The hooks objects ``EnkashClient(hooks=...)`` was given: one, a list, or None."""
    given = list(hooks) if isinstance(hooks, (list, tuple)) else [hooks]
    return [hook for hook in given if hook is not None]


class _NoBatch:
    """What :meth:`Observer.batch` gives when nothing observes: counts nothing."""

    __slots__ = ()
    details: Mapping[str, Any] = {}
    state: Mapping[str, Any] = {}

    def row(self, outcome: str) -> None:
        """Nothing to count."""


_NO_BATCH = _NoBatch()


class Observer:
    """The client's one reporting point: its hooks, OpenTelemetry and the log lines.

    ``server`` is the (host, port) of the base URL, named in every request event.
    """

    def __init__(
        self,
        hooks: object | None = None,
        server: tuple[str, int | None] = ("", None),
        *,
        automatic: Any = None,
    ) -> None:
        self._user = tuple(_Sink(target) for target in hook_targets(hooks))
        self.server_address, self.server_port = server
        # Hooks the client adds by itself (OpenTelemetry through the global providers),
        # told only while their ``live()`` says something records.
        self._auto = automatic
        self._auto_sink = None if automatic is None else _Sink(automatic)

    def attach(self, hooks: object) -> None:
        """Tell ``hooks`` too, after the client's own, of every call begun from now on
        (how a sync worker counts each chunk's requests)."""
        self._user = (*self._user, _Sink(hooks))

    def detach(self, hooks: object) -> None:
        """Stop telling ``hooks`` (given to :meth:`attach`) of the calls begun from now on."""
        self._user = tuple(sink for sink in self._user if sink.target is not hooks)

    def _sinks(self) -> tuple[_Sink, ...]:
        auto = self._auto
        if auto is not None and auto.live():
            assert self._auto_sink is not None
            return (*self._user, self._auto_sink)
        return self._user

    def begin(
        self, operation: str, details: dict[str, Any] | None = None, *, nested: bool = False
    ) -> CallRecord | None:
        """A record for a new logical call (use as ``with``), or None when nothing would
        see it (no hooks, OpenTelemetry not configured, ``enkash_async`` logging below
        INFO) or when the running task is inside an observed call already (unless
        ``nested``: a login, reported as a call of its own inside the one it serves)."""
        current = _CURRENT.get()
        if current is not None and not nested:
            return None
        sinks = self._sinks()
        if not sinks and not logger.isEnabledFor(logging.INFO):
            return None
        return CallRecord(
            self,
            operation,
            sinks,
            current if current is not None else _PARENT.get(),
            time.perf_counter(),
            details if details is not None else {},
        )

    def begin_batch(self, operation: str, details: dict[str, Any]) -> CallRecord | None:
        """A record for a batch whose calls are reported as its children, or None when
        nothing observes. ``with`` makes it the parent of the calls the running task (and
        the tasks it starts) makes; an async generator calls ``open``/``close`` and
        :meth:`inside` in each task instead."""
        sinks = self._sinks()
        if not sinks:
            return None
        return CallRecord(
            self, operation, sinks, _PARENT.get(), time.perf_counter(), details, batch=True
        )

    @contextlib.contextmanager
    def batch(self, operation: str, **details: Any) -> Iterator[CallRecord | _NoBatch]:
        """``with observer.batch("sync.chunk", chunk=3) as batch:``: the calls made inside
        are reported as children of one batch call; ``batch.row(outcome)`` counts a row.
        Yields a record that counts nothing when nothing observes."""
        record = self.begin_batch(operation, details)
        if record is None:
            yield _NO_BATCH
            return
        with record:
            yield record

    @staticmethod
    @contextlib.contextmanager
    def inside(batch: CallRecord | None) -> Iterator[None]:
        """Make ``batch`` the parent of the calls the running task makes in this block."""
        if batch is None:
            yield
            return
        token = _PARENT.set(batch)
        try:
            yield
        finally:
            _PARENT.reset(token)

    @staticmethod
    def count_row(outcome: str) -> None:
        """Count a row with ``outcome`` in the batch the running task is inside, if any."""
        batch = _PARENT.get()
        if batch is not None:
            batch.row(outcome)

    @staticmethod
    def current() -> CallRecord | None:
        """The observed logical call the running task is inside, if any."""
        return _CURRENT.get()
