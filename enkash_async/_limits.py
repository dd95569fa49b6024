"""Client-wide limits on requests: a concurrency window that adapts, and a rate limit.

The window follows AIMD, as TCP and botocore's adaptive retry mode do: every success
grows it by one request per window's worth of successes, and an overload reply (429,
503) halves it, at most once per window, so a bulk job settles just under what EnKash
accepts instead of provoking a storm of 429s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from aiolimiter import AsyncLimiter

from enkash_async.errors import FieldError, ValidationError

__all__ = ["Limiter", "RequestLimiter", "RequestSlot"]


class RequestSlot(Protocol):
    """One admitted request; told how it ended before it is released."""

    def overloaded(self) -> None:
        """The request was refused for load (429, 503)."""

    def succeeded(self) -> None:
        """The request got a reply that was not an overload."""


class Limiter(Protocol):
    """The seam every request passes through before it is sent (``EnkashClient(limiter=...)``).

    ``slot()`` waits until the request may be sent and holds its place while it runs.
    An implementation that cannot decide (a shared store unreachable) raises an
    ``EnkashError`` from ``__aenter__``, so nothing is sent unbudgeted.
    """

    def slot(self) -> AbstractAsyncContextManager[RequestSlot]:
        """An async context manager holding one request slot."""
        ...


class RequestLimiter:
    """Admits requests while fewer than ``window`` are in flight, and at most
    ``rate_limit`` per second when set.

    With ``adaptive`` off the window stays at ``max_concurrency``.
    """

    def __init__(
        self,
        max_concurrency: int,
        *,
        adaptive: bool = True,
        rate_limit: float | None = None,
        initial_window: int | None = None,
        decrease_factor: float = 0.5,
    ) -> None:
        if max_concurrency < 1:
            raise ValidationError([FieldError("max_concurrency", "must be at least 1")])
        self.max_concurrency = max_concurrency
        self.adaptive = adaptive
        self.window = float(
            min(max_concurrency, initial_window or max_concurrency) if adaptive else max_concurrency
        )
        self.decrease_factor = decrease_factor
        self.in_flight = 0
        self.overloads = 0
        self._started = 0  # sequence number of the last admitted request
        self._shrunk_at = 0  # sequence number when the window last shrank
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._rate: AsyncLimiter | None = None
        if rate_limit:
            # AsyncLimiter refuses to acquire more than its max_rate at once, so a rate
            # below one per second is one request per 1/rate seconds.
            if rate_limit >= 1:
                self._rate = AsyncLimiter(rate_limit, 1.0)
            else:
                self._rate = AsyncLimiter(1, 1 / rate_limit)

    def __repr__(self) -> str:
        return (
            f"RequestLimiter(window={self.window:.1f}, in_flight={self.in_flight}, "
            f"max_concurrency={self.max_concurrency}, adaptive={self.adaptive})"
        )

    def slot(self) -> _Slot:
        """``async with limiter.slot() as slot``: hold one request slot while the request
        runs; tell it how the request ended with ``slot.overloaded()``/``slot.succeeded()``."""
        return _Slot(self)

    async def acquire(self) -> int:
        """Wait for the rate limit and a place in the window; the request's sequence number."""
        if self._rate is not None:
            await self._rate.acquire()
        await self._admit()
        return self._started

    def try_acquire(self) -> int | None:
        """A place in the window taken without waiting (its sequence number), or None when
        the request must wait: a rate limit is set, the window is full, or others wait."""
        if self._rate is not None or not self._has_room():
            return None
        self.in_flight += 1
        self._started += 1
        return self._started

    def _has_room(self) -> bool:
        """Whether a request may start now without overtaking one that waits."""
        return not self._waiters and self.in_flight < max(1, int(self.window))

    async def _admit(self) -> None:
        if not self._has_room():
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # resolved by _wake, which counts this request in flight
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.in_flight -= 1  # woken, then cancelled before it ran: hand it on
                    self._wake()
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
        else:
            self.in_flight += 1
        self._started += 1

    def release(self, sequence: int, *, overloaded: bool, succeeded: bool) -> None:
        """Free the place of request ``sequence``, adapting the window to how it ended."""
        self.in_flight -= 1
        if self.adaptive:
            if overloaded:
                self.overloads += 1
                # Requests sent before the last cut saw the old window: cut once per window.
                if sequence > self._shrunk_at:
                    self.window = max(1.0, self.window * self.decrease_factor)
                    self._shrunk_at = self._started
            elif succeeded:
                self.window = min(float(self.max_concurrency), self.window + 1.0 / self.window)
        self._wake()

    def _wake(self) -> None:
        # A freed place is handed to the longest waiter, counted in flight at once, so a
        # newcomer arriving before that waiter runs cannot take it (first come, first served).
        while self._waiters and self.in_flight < max(1, int(self.window)):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)


class _Slot:
    # A class, not @asynccontextmanager: this runs once per request, on the hot path.
    __slots__ = ("_limiter", "overload", "sequence", "success")

    def __init__(self, limiter: RequestLimiter) -> None:
        self._limiter = limiter
        self.sequence = 0
        self.overload = False
        self.success = False

    async def __aenter__(self) -> _Slot:
        # Most requests find room at once: no coroutine to make, nothing to wait for.
        sequence = self._limiter.try_acquire()
        self.sequence = await self._limiter.acquire() if sequence is None else sequence
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._limiter.release(self.sequence, overloaded=self.overload, succeeded=self.success)

    def overloaded(self) -> None:
        """The request was refused for load (429, 503)."""
        self.overload = True

    def succeeded(self) -> None:
        """The request got a reply that was not an overload."""
        self.success = True
