"""The one retry policy: which failures are retried, how long to wait, when to stop.

Built on tenacity. A read-only call (search) is retried on any transport failure and on
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
import tenacity

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
    "may_retry",
    "retry_after",
]

logger = logging.getLogger("enkash_async")

T = TypeVar("T")


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
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    idempotent: bool,
    operation: str,
    observe: Callable[[RetryEvent], None] | None = None,
    budget: AttemptBudget | None = None,
    deadline_at: float | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the policy stops it.

    ``attempt`` must count itself in ``budget`` when one is given: retries stop once it
    is spent (else after ``policy.max_attempts``). ``deadline_at`` (on ``policy.clock``)
    replaces the policy's own deadline counted from now. ``observe`` is told of each
    retry, like the policy's ``on_retry``. Raises the last :class:`EnkashError` seen.
    """
    if deadline_at is None and policy.deadline is not None:
        deadline_at = policy.clock() + policy.deadline
    try:
        return await attempt()
    except EnkashError as exc:
        if not may_retry(exc, policy, idempotent=idempotent, budget=budget):
            raise
        failure = exc
    return await retry_after(
        failure,
        attempt,
        policy,
        idempotent=idempotent,
        operation=operation,
        observe=observe,
        budget=budget,
        deadline_at=deadline_at,
    )


def may_retry(
    error: EnkashError, policy: RetryPolicy, *, idempotent: bool, budget: AttemptBudget | None
) -> bool:
    """Whether a first attempt's ``error`` leaves a retry to try (kind and budget alike)."""
    out_of_attempts = budget.spent if budget is not None else policy.max_attempts <= 1
    return not out_of_attempts and is_retryable(error, policy, idempotent=idempotent)


async def retry_after(
    failure: EnkashError,
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    idempotent: bool,
    operation: str,
    observe: Callable[[RetryEvent], None] | None = None,
    budget: AttemptBudget | None = None,
    deadline_at: float | None = None,
) -> T:
    """Go on after a first attempt failed with ``failure`` (one :func:`may_retry` allows):
    wait, then run ``attempt`` again until it succeeds, fails for good, or the policy
    stops it, as :func:`call_with_retries` does. ``deadline_at`` is the call's own (None:
    no deadline). Raises the last :class:`EnkashError` seen.

    Most calls succeed at once, so only a failure pays for tenacity and these closures.
    """
    planned: dict[int, float] = {}

    def wait(state: tenacity.RetryCallState) -> float:
        # Drawn once per attempt: tenacity may ask for the wait before or after ``stop``.
        if state.attempt_number not in planned:
            error = state.outcome.exception() if state.outcome else None
            assert isinstance(error, EnkashError)
            planned[state.attempt_number] = policy.backoff(state.attempt_number, error)
        return planned[state.attempt_number]

    def stop(state: tenacity.RetryCallState) -> bool:
        spent = budget.spent if budget is not None else state.attempt_number >= policy.max_attempts
        if spent:
            return True
        if deadline_at is None:
            return False
        # A retry that could only start at or after the deadline is not worth waiting for.
        return policy.clock() + wait(state) >= deadline_at

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        assert isinstance(error, EnkashError)
        seconds = wait(state)
        logger.info(
            "%s failed (attempt %d of %d), retrying in %.2fs: %s",
            operation,
            state.attempt_number,
            policy.max_attempts,
            seconds,
            error,
        )
        if policy.on_retry is None and observe is None:
            return
        event = RetryEvent(
            operation=operation,
            attempt=state.attempt_number,
            max_attempts=policy.max_attempts,
            wait=seconds,
            error=error,
        )
        if observe is not None:
            observe(event)
        if policy.on_retry is not None:
            policy.on_retry(event)

    failures = [failure]

    async def replay_then_attempt() -> T:
        if failures:  # tenacity's attempt 1 is the one already made
            raise failures.pop()
        return await attempt()

    retrying = tenacity.AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(
            lambda exc: is_retryable(exc, policy, idempotent=idempotent)
        ),
        sleep=policy.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(replay_then_attempt)
