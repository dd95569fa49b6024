"""The one retry policy: which failures are retried, how long to wait, when to stop,
and the one loop that applies it (:func:`call_with_retries`).

A read-only call (search) is retried on any transport failure and on
408, 429, 500, 502, 503 and 504 (a ``SYSTEM_ERROR`` envelope counts as a 500). A create
is not idempotent, so it is retried only when the request surely did not reach EnKash
(``ConnectError``) or EnKash refused it unprocessed (429, 503). A failed TLS handshake
(``TLSError``) is never retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from enkash_async.errors import (
    APIError,
    ConnectError,
    EnkashError,
    ServerError,
    TLSError,
    TransportError,
    UnexpectedResponseError,
)

__all__ = [
    "AttemptBudget",
    "RetryEvent",
    "RetryPolicy",
    "call_with_retries",
    "failure_status",
    "is_retryable",
]

logger = logging.getLogger("enkash_async")

T = TypeVar("T")
A = TypeVar("A")


@attrs.frozen(kw_only=True)
class RetryEvent:
    """What ``on_retry`` is told before each wait: the failed ``attempt`` (1-based) of
    ``max_attempts``, the ``error``, the ``wait`` in seconds and the ``operation``."""

    operation: str
    attempt: int
    max_attempts: int
    wait: float
    error: EnkashError


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How calls are retried. Set per client, and per call to override.

    Waits grow exponentially from ``initial_backoff`` by ``multiplier`` up to
    ``max_backoff`` with full jitter; a ``Retry-After`` from EnKash is honoured up to
    ``max_retry_after``. No call makes more than ``max_attempts`` attempts (a create:
    ``max_attempts`` sends and ``max_attempts`` lookups in all, however many rounds of
    reconciliation), and the whole call, its login, lookups and re-sends included,
    ends by ``deadline`` seconds after it started (None: no deadline).

    A create that failed after it may have reached EnKash is looked up only once
    ``settle_time`` seconds have passed since the failure, so a commit EnKash is still
    making is found rather than sent again: the default covers commits that land up to
    2 s after the failed reply. ``sleep`` and ``clock`` are injectable so tests never wait.
    """

    max_attempts: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    multiplier: float = 2.0
    max_retry_after: float = 60.0
    deadline: float | None = 120.0
    settle_time: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    unprocessed_statuses: frozenset[int] = frozenset({429, 503})
    sleep: Callable[[float], Awaitable[None]] = attrs.field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, repr=False)
    on_retry: Callable[[RetryEvent], None] | None = attrs.field(default=None, repr=False)

    def call_deadline(self) -> float | None:
        """The ``clock`` reading by which a call starting now must end, logins, lookups
        and re-sends included (None: no deadline). Every call asks this, once, when it
        starts, and hands it to whatever it calls on its behalf."""
        return None if self.deadline is None else self.clock() + self.deadline

    def time_left(self, deadline_at: float | None) -> float | None:
        """Seconds until ``deadline_at`` (from :meth:`call_deadline`); None: no deadline."""
        return None if deadline_at is None else deadline_at - self.clock()

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int, error: EnkashError) -> float:
        """Seconds to wait after failed ``attempt`` (1-based)."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_retry_after)
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return random.uniform(0.0, ceiling)


@attrs.define
class AttemptBudget:
    """The requests one logical call may send (``limit``), and how many it has (``used``).

    Shared by every retry and reconciliation round of the call, so they draw from one
    budget rather than each getting ``max_attempts`` of its own.
    """

    limit: int
    used: int = 0

    @property
    def spent(self) -> bool:
        """Whether no request is left."""
        return self.used >= self.limit


def failure_status(error: APIError) -> int | None:
    """The HTTP status ``error`` stands for.

    EnKash may report its own failure (``SYSTEM_ERROR``) inside an HTTP 200 envelope:
    that is a 500 in all but the status line, and is retried (or, for a create,
    reconciled) like one.
    """
    if isinstance(error, ServerError) and error.status is not None and 200 <= error.status < 300:
        return 500  # (a 4xx keeps its status: EnKash said it was the request's fault)
    return error.status


def is_retryable(error: BaseException, policy: RetryPolicy, *, idempotent: bool) -> bool:
    """Whether ``error`` may be retried under ``policy`` for this kind of call."""
    if isinstance(error, APIError):
        status = failure_status(error)
        if status is None:
            return False
        statuses = policy.retry_statuses if idempotent else policy.unprocessed_statuses
        return status in statuses
    if isinstance(error, TLSError):
        return False  # the same certificate fails the same way every time
    if isinstance(error, ConnectError):
        return True
    if isinstance(error, TransportError):
        return idempotent
    if isinstance(error, UnexpectedResponseError):
        return idempotent and error.transient
    return False


async def call_with_retries(
    attempt: Callable[[A], Awaitable[T]],
    argument: A,
    policy: RetryPolicy,
    *,
    idempotent: bool,
    operation: str,
    observe: Callable[[RetryEvent], None] | None = None,
    budget: AttemptBudget | None = None,
    deadline_at: float | None = None,
) -> T:
    """Run ``attempt(argument)`` until it succeeds, fails for good, or the policy stops it:
    the one retry entry point of every call.

    ``attempt`` must count itself in ``budget`` when one is given: retries stop once it
    is spent (else after ``policy.max_attempts``). ``deadline_at`` (on ``policy.clock``,
    from :meth:`RetryPolicy.call_deadline`) ends the retries; None: no deadline.
    ``observe`` is told of each retry, like the policy's ``on_retry``. Raises the last
    :class:`EnkashError` seen.
    """
    # Most calls succeed at once: the first attempt builds nothing (no closure, no loop
    # state), since every object saved per request is one the collector skips.
    try:
        return await attempt(argument)
    except EnkashError as exc:
        out_of_attempts = budget.spent if budget is not None else policy.max_attempts <= 1
        if out_of_attempts or not is_retryable(exc, policy, idempotent=idempotent):
            raise
        failure = exc
    return await _wait_and_retry(
        failure,
        attempt,
        argument,
        policy,
        idempotent=idempotent,
        operation=operation,
        observe=observe,
        budget=budget,
        deadline_at=deadline_at,
    )


async def _wait_and_retry(
    failure: EnkashError,
    attempt: Callable[[A], Awaitable[T]],
    argument: A,
    policy: RetryPolicy,
    *,
    idempotent: bool,
    operation: str,
    observe: Callable[[RetryEvent], None] | None,
    budget: AttemptBudget | None,
    deadline_at: float | None,
) -> T:
    """After a first attempt failed with a retryable ``failure``: wait the policy's
    backoff, attempt again, and so on until success, a failure that is not retried, a
    spent budget or the deadline. Raises the last :class:`EnkashError` seen."""
    failed_attempt = 1
    while True:
        wait = policy.backoff(failed_attempt, failure)
        # A retry that could only start at or after the deadline is not worth waiting for.
        if deadline_at is not None and policy.clock() + wait >= deadline_at:
            raise failure
        _announce(failure, failed_attempt, wait, policy, operation, observe)
        await policy.sleep(wait)
        try:
            return await attempt(argument)
        except EnkashError as exc:
            failed_attempt += 1
            spent = budget.spent if budget is not None else failed_attempt >= policy.max_attempts
            if spent or not is_retryable(exc, policy, idempotent=idempotent):
                raise
            failure = exc


def _announce(
    error: EnkashError,
    failed_attempt: int,
    wait: float,
    policy: RetryPolicy,
    operation: str,
    observe: Callable[[RetryEvent], None] | None,
) -> None:
    """Log a retry about to wait, and tell ``observe`` and the policy's ``on_retry``."""
    logger.info(
        "%s failed (attempt %d of %d), retrying in %.2fs: %s",
        operation,
        failed_attempt,
        policy.max_attempts,
        wait,
        error,
    )
    if policy.on_retry is None and observe is None:
        return
    event = RetryEvent(
        operation=operation,
        attempt=failed_attempt,
        max_attempts=policy.max_attempts,
        wait=wait,
        error=error,
    )
    if observe is not None:
        observe(event)
    if policy.on_retry is not None:
        policy.on_retry(event)
