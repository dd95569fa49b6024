"""Faults the fake server can inject, the rules that decide when they fire, and the
replies they make (:func:`shape`)."""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import datetime
from email.utils import format_datetime
from typing import Final, Literal

import attrs
from aiohttp import web

from enkash_async.errors import FieldError, ValidationError

from ._envelope import (
    TOKEN_INVALID_CODE,
    TOKEN_INVALID_MESSAGE,
    ErrorType,
    error_type_for_status,
    html_page,
    reason,
)
from ._reply import Reply, error, request_id, respond

__all__ = [
    "ROUTES",
    "Fault",
    "FaultKind",
    "Injection",
    "RetryAfter",
    "Route",
    "make_injection",
    "retry_after_header",
    "shape",
]

#: The routes faults can target: ``POST /oauth/token``, ``/api/v0/customer``, ``.../search``.
Route = Literal["token", "create", "search", "update", "activate", "deactivate", "delete"]
#: The routes that change what EnKash holds (an after-commit fault applies the change first).
WRITE_ROUTES: Final[frozenset[Route]] = frozenset(
    ("create", "update", "activate", "deactivate", "delete")
)
ROUTES: Final[tuple[Route, ...]] = (
    "token",
    "create",
    "search",
    "update",
    "activate",
    "deactivate",
    "delete",
)

FaultKind = Literal[
    "status",
    "latency",
    "disconnect",
    "drop",
    "html",
    "truncated",
    "envelope_error",
    "token_invalid",
    "after_commit",
]

#: A ``Retry-After`` value: seconds, or an HTTP date (a string is sent as is).
RetryAfter = int | float | str | datetime


def retry_after_header(value: RetryAfter) -> str:
    """``value`` as a ``Retry-After`` header (fractional seconds are kept, for fast tests)."""
    if isinstance(value, datetime):
        return format_datetime(value, usegmt=True)
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def _fraction(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValidationError([FieldError("cut", f"cut must be in [0, 1); got {value!r}")])
    return value


@attrs.frozen
class Fault:
    """What to do to one request instead of answering it normally.

    Build one with the class methods (``Fault.status(503, retry_after=1)``,
    ``Fault.disconnect()``, ``Fault.after_commit(status=500)``, ...) and hand it to
    :meth:`FakeEnkash.inject <enkash_async.testing.FakeEnkash.inject>`.
    Except for :meth:`after_commit` and :meth:`latency`, a fault pre-empts the route:
    no customer is stored, no token is issued, no login attempt is counted.
    """

    kind: FaultKind
    http_status: int = 200
    retry_after: RetryAfter | None = None
    delay: float = 0.0
    error_type: ErrorType | str = ErrorType.SYSTEM_ERROR.value
    response_code: int = 500
    message: str = "Internal server error"
    #: For ``disconnect``/``truncated``: the share of the body sent before the cut.
    cut: float = attrs.field(default=0.5, converter=_fraction)
    #: For ``after_commit``: the fault applied to the reply once the customer is stored.
    then: Fault | None = None

    @classmethod
    def status(
        cls,
        status: int,
        *,
        retry_after: RetryAfter | None = None,
        error_type: ErrorType | str | None = None,
        message: str | None = None,
    ) -> Fault:
        """Answer HTTP ``status`` with an error envelope (and ``Retry-After`` if given).

        ``error_type`` defaults from the status: 5xx SYSTEM_ERROR, 401 UNAUTHORIZED, ...
        """
        return cls(
            "status",
            http_status=status,
            retry_after=retry_after,
            error_type=error_type or error_type_for_status(status),
            response_code=status,
            message=message or reason(status),
        )

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Wait ``seconds``, then answer normally."""
        return cls("latency", delay=seconds)

    @classmethod
    def disconnect(cls, *, cut: float = 0.5) -> Fault:
        """Send 200, the headers (with the full Content-Length) and ``cut`` of the body,
        then close the connection: the client sees a payload/connection error."""
        return cls("disconnect", cut=cut)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without answering: the client sees a disconnect."""
        return cls("drop")

    @classmethod
    def html(cls, status: int = 502, *, retry_after: RetryAfter | None = None) -> Fault:
        """Answer ``status`` with an nginx-style HTML page, as a proxy in front would."""
        return cls("html", http_status=status, retry_after=retry_after)

    @classmethod
    def truncated(cls, *, cut: float = 0.5) -> Fault:
        """Answer 200 with a complete HTTP body that is JSON cut after ``cut`` of it."""
        return cls("truncated", cut=cut)

    @classmethod
    def envelope_error(
        cls,
        error_type: ErrorType | str = ErrorType.SYSTEM_ERROR.value,
        response_code: int = 500,
        message: str = "Something went wrong",
    ) -> Fault:
        """Answer HTTP 200 with an envelope that carries an error."""
        return cls(
            "envelope_error", error_type=error_type, response_code=response_code, message=message
        )

    @classmethod
    def token_invalid(cls) -> Fault:
        """Answer HTTP 200 with ``response_code`` 117, "Token is invalid." (the token is kept)."""
        return cls(
            "token_invalid",
            error_type=ErrorType.UNAUTHORIZED.value,
            response_code=TOKEN_INVALID_CODE,
            message=TOKEN_INVALID_MESSAGE,
        )

    @classmethod
    def after_commit(
        cls,
        *,
        status: int | None = None,
        disconnect: bool = False,
        truncated: bool = False,
        html: bool = False,
        delay: float = 0.0,
        retry_after: RetryAfter | None = None,
    ) -> Fault:
        """For a writing route: apply the change, then answer with a fault (the ambiguous case).

        Exactly one of ``status`` (an error envelope, or an HTML page with ``html=True``),
        ``disconnect`` or ``truncated``; or only ``delay``, which stores, waits, then
        answers normally (so a client timeout fires after the commit). ``delay`` also
        applies before the other kinds.
        """
        chosen = (status is not None) + disconnect + truncated
        if chosen > 1 or (chosen == 0 and delay <= 0):
            raise ValidationError(
                [
                    FieldError(
                        "after_commit",
                        "after_commit needs exactly one of status, disconnect, truncated",
                    )
                ]
            )
        if html and status is None:
            raise ValidationError(
                [FieldError("after_commit", "after_commit(html=True) needs a status")]
            )
        then: Fault | None = None
        if status is not None:
            then = (
                cls.html(status, retry_after=retry_after)
                if html
                else cls.status(status, retry_after=retry_after)
            )
        elif disconnect:
            then = cls.disconnect()
        elif truncated:
            then = cls.truncated()
        return cls("after_commit", delay=delay, then=then)


@attrs.define(eq=False)
class Injection:
    """A fault injected on some routes: when it fires, and how often it has."""

    fault: Fault
    routes: frozenset[Route]
    #: Chance per request (drawn from a RNG seeded by the server seed), or None for always.
    rate: float | None
    #: Firings left, or None for unlimited.
    remaining: int | None
    rng: random.Random = attrs.field(repr=False)
    fired: int = 0

    @property
    def exhausted(self) -> bool:
        """True once ``times`` firings have happened."""
        return self.remaining is not None and self.remaining <= 0

    def fires(self, route: Route) -> bool:
        """Whether this request on ``route`` gets the fault (and count it if so)."""
        if route not in self.routes or self.exhausted:
            return False
        if self.rate is not None and self.rng.random() >= self.rate:
            return False
        self.fired += 1
        if self.remaining is not None:
            self.remaining -= 1
        return True


def make_injection(
    fault: Fault,
    routes: Route | Collection[Route] | None,
    rate: float | None,
    times: int | None,
    rng: random.Random,
) -> Injection:
    """Check the arguments of :meth:`FakeEnkash.inject` and build the rule."""
    if routes is None:
        chosen = frozenset(("create",) if fault.kind == "after_commit" else ROUTES)
    elif isinstance(routes, str):
        chosen = frozenset((routes,))
    else:
        chosen = frozenset(routes)
    unknown = chosen - set(ROUTES)
    if unknown or not chosen:
        raise ValidationError(
            [FieldError("route", f"routes must be among {ROUTES}; got {sorted(chosen)}")]
        )
    if fault.kind == "after_commit" and not chosen <= WRITE_ROUTES:
        raise ValidationError(
            [
                FieldError(
                    "route",
                    f"after_commit faults apply to the routes that write: {sorted(WRITE_ROUTES)}",
                )
            ]
        )
    if rate is not None and not 0.0 <= rate <= 1.0:
        raise ValidationError([FieldError("rate", f"rate must be in [0, 1]; got {rate!r}")])
    if times is not None and times < 1:
        raise ValidationError([FieldError("times", f"times must be at least 1; got {times!r}")])
    return Injection(fault, chosen, rate, times, rng)


async def shape(request: web.Request, fault: Fault, base: Reply | None) -> web.StreamResponse:
    """The reply ``fault`` makes of ``base`` (the route's own reply, where needed)."""
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = retry_after_header(fault.retry_after)
    kind = fault.kind
    if kind == "status":
        return respond(error(fault.http_status, fault.error_type, fault.message, headers=headers))
    if kind == "html":
        page = html_page(fault.http_status)
        return respond(Reply(fault.http_status, page, "text/html", headers))
    if kind in ("envelope_error", "token_invalid"):
        reply = error(200, fault.error_type, fault.message, response_code=fault.response_code)
        return respond(reply)
    if kind == "drop":
        if request.transport is not None:
            request.transport.close()
        # Writing this fails on the closed transport; aiohttp treats that as a hang-up.
        return web.Response(status=500)
    if base is None:  # pragma: no cover - every other kind is handled above
        raise AssertionError(f"fault {kind!r} needs a reply to cut")
    cut = min(len(base.body) - 1, int(len(base.body) * fault.cut))
    if kind == "truncated":
        return respond(Reply(200, base.body[: max(cut, 0)], base.content_type))
    response = web.StreamResponse(status=base.status, headers=base.headers)
    response.content_type = base.content_type
    response.content_length = len(base.body)
    response.headers["X-Request-Id"] = request_id()
    await response.prepare(request)
    await response.write(base.body[: max(cut, 0)])
    if request.transport is not None:
        request.transport.close()
    return response
