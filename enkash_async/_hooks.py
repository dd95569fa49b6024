"""Hooks: what a caller is told about every logical call and every HTTP attempt.

``EnkashClient(hooks=...)`` takes any object with some of :class:`Hooks`' four methods
(subclass :class:`Hooks` for no-op defaults). Each call's events share one ``state``
dict, so a hook can open a span or timer in ``call_started`` and close it in
``call_ended``. Events carry no secret (no header, no body, no query string). A hook that
raises is logged once per hook method and never breaks the call.

:class:`Observer` is the one place the client reports to: the hooks, and the log lines
of ``_log``. With no hooks and logging below INFO it reports nothing and costs one check.
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import Any, Protocol

import attrs

from enkash_async import _log
from enkash_async.errors import EnkashError

__all__ = [
    "CallEnded",
    "CallStarted",
    "Hooks",
    "Observer",
    "RequestSent",
    "ResponseReceived",
]

logger = logging.getLogger("enkash_async")


@attrs.frozen(kw_only=True)
class CallStarted:
    """A logical call (``operation`` such as ``customers.create``) begins; ``state`` is
    this call's own dict, shared by all of its events."""

    operation: str
    state: dict[str, Any] = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class CallEnded:
    """A logical call ended: ``outcome`` "ok" or "error" (then ``error``), the HTTP
    ``attempts`` it sent, ``elapsed`` seconds, whether the create was ``reconciled`` (found
    by ``unique_ref_no`` after an ambiguous failure) and the last ``request_id``."""

    operation: str
    outcome: str
    attempts: int
    elapsed: float
    reconciled: bool
    request_id: str | None
    error: EnkashError | None
    state: dict[str, Any] = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class RequestSent:
    """An HTTP request of ``operation`` is about to be sent: ``method``, ``path`` (never
    a query string), ``attempt`` (1-based, per logical call) and its ``request_id``."""

    operation: str
    method: str
    path: str
    attempt: int
    request_id: str
    state: dict[str, Any] = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class ResponseReceived:
    """The reply to a :class:`RequestSent` (or its failure): ``status`` (None when no reply
    came, then ``error``), ``request_id``, body ``bytes`` and ``elapsed`` seconds."""

    operation: str
    method: str
    path: str
    attempt: int
    status: int | None
    request_id: str
    bytes: int
    elapsed: float
    error: EnkashError | None
    state: dict[str, Any] = attrs.field(repr=False)


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


_NAMES = ("call_started", "call_ended", "request_sent", "response_received")

# The logical call the running task is inside, if anything observes it.
_CURRENT: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "enkash_async_call", default=None
)


@attrs.define(slots=True, eq=False)
class CallRecord:
    """One observed logical call: what its attempts and its end report."""

    observer: Observer
    operation: str
    started: float
    state: dict[str, Any] = attrs.Factory(dict)
    attempts: int = 0
    reconciled: bool = False
    request_id: str | None = None
    _token: contextvars.Token[CallRecord | None] | None = None

    def __enter__(self) -> CallRecord:
        self._token = _CURRENT.set(self)
        self.observer._emit("call_started", CallStarted(operation=self.operation, state=self.state))
        return self

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)
        failure = error if isinstance(error, EnkashError) else None
        outcome = "ok" if error is None else "error"
        elapsed = time.perf_counter() - self.started
        self.observer._emit(
            "call_ended",
            CallEnded(
                operation=self.operation,
                outcome=outcome,
                attempts=self.attempts,
                elapsed=elapsed,
                reconciled=self.reconciled,
                request_id=self.request_id if failure is None else failure_id(failure, self),
                error=failure,
                state=self.state,
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

    def sent(self, method: str, path: str, request_id: str) -> float:
        """Count and report one request about to be sent; its start time."""
        self.attempts += 1
        self.request_id = request_id
        self.observer._emit(
            "request_sent",
            RequestSent(
                operation=self.operation,
                method=method,
                path=path,
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
    ) -> None:
        """Report the reply (or failure) of the request :meth:`sent` started."""
        elapsed = time.perf_counter() - started
        self.observer._emit(
            "response_received",
            ResponseReceived(
                operation=self.operation,
                method=method,
                path=path,
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


def failure_id(error: EnkashError, record: CallRecord) -> str | None:
    """The request id an error names, else the call's last one."""
    return getattr(error, "request_id", None) or record.request_id


class Observer:
    """The client's one reporting point: its hooks (if any) and the log lines."""

    def __init__(self, hooks: object | None = None) -> None:
        self._hooks = {name: getattr(hooks, name, None) for name in _NAMES}
        self._hooks = {name: fn for name, fn in self._hooks.items() if callable(fn)}
        self._failed: set[str] = set()

    def begin(self, operation: str) -> CallRecord | None:
        """A record for a new logical call (use as ``with``), or None when nothing would
        see it (no hooks, ``enkash_async`` logging below INFO)."""
        if not self._hooks and not logger.isEnabledFor(logging.INFO):
            return None
        return CallRecord(self, operation, time.perf_counter())

    @staticmethod
    def current() -> CallRecord | None:
        """The observed logical call the running task is inside, if any."""
        return _CURRENT.get()

    def _emit(self, name: str, event: object) -> None:
        hook = self._hooks.get(name)
        if hook is None:
            return
        try:
            hook(event)
        except Exception as exc:
            if name not in self._failed:  # once per hook method, not once per request
                self._failed.add(name)
                logger.warning(
                    "the %s hook raised %s: %s; ignored (reported once)",
                    name,
                    type(exc).__name__,
                    exc,
                )
