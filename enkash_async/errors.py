"""The exceptions enkash_async raises.

Every exception the library raises is an :class:`EnkashError`; no aiohttp, JSON or
cattrs exception escapes (the original is chained as ``__cause__``)::

    EnkashError
    ├── ValidationError            (also ValueError) a request broke a rule; nothing was sent
    ├── TransportError             the request did not complete at the HTTP level
    │   ├── ConnectError           never reached EnKash (refused, DNS, connect timeout)
    │   │   └── TLSError           the TLS handshake failed (untrusted certificate); not retried
    │   └── RequestTimeoutError    reached EnKash, no complete reply in time
    │                              (``RequestTimeout``: its old name, kept as an alias)
    ├── APIError                   EnKash answered with an error (HTTP status or envelope)
    │   ├── BadRequestError        400, 422, VALIDATION_ERROR, UNPROCESSABLE_REQUEST,
    │   │                          CLIENT_REQUEST_ERROR
    │   ├── AuthenticationError    401, UNAUTHORIZED, response_code 117
    │   │   └── LoginError         POST /oauth/token refused the credentials (never retried)
    │   ├── PermissionDeniedError  403, INVALID_ACCESS
    │   ├── NotFoundError          404, RECORD_NOT_FOUND
    │   ├── RateLimitError         429 (``retry_after`` in seconds, if EnKash sent one)
    │   └── ServerError            5xx, SYSTEM_ERROR
    ├── UnexpectedResponseError    a reply that is not JSON, HTML, truncated, or of the wrong shape
    ├── PaginationError            a search that would loop or skip forever
    ├── AmbiguousCreateError       a create whose outcome is unknown and cannot be reconciled
    ├── UsageError                 (also RuntimeError) used out of order: started twice, not started
    │
    │   defined in enkash_async.sync (the core never imports them):
    ├── SourceError                a sync source cannot be read at all (not a file, no header)
    ├── CheckpointError            a sync's checkpoint could not be read or written
    ├── DeactivationRefusedError   deactivate-missing would exceed its share of known customers
    ├── SyncStoreError             the Redis of a distributed sync failed
    │   ├── StateLostError         Redis lost a run's or a checkpoint's state
    │   ├── EvictionPolicyError    Redis may evict the sync's keys (maxmemory-policy)
    │   └── BudgetUnavailableError the shared request budget could not be consulted
    ├── SyncRunError               a worker cannot work on a run (unknown, another target)
    ├── NoRedisServerError         no redis-server could be found or started
    │
    │   defined in enkash_async.testing:
    └── FakeEnkashProcessError     a FakeEnkashProcess did not start or answer

Every one pickles and unpickles with its message and attributes (errors cross processes
in SAQ, multiprocessing and Celery); ``__cause__`` and the traceback are not carried.

Messages never carry a token, client secret or password, and quote at most a short
excerpt of a reply body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "APIError",
    "AmbiguousCreateError",
    "AuthenticationError",
    "BadRequestError",
    "ConnectError",
    "EnkashError",
    "FieldError",
    "LoginError",
    "NotFoundError",
    "PaginationDriftWarning",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeout",
    "RequestTimeoutError",
    "ServerError",
    "TLSError",
    "TransportError",
    "UnexpectedResponseError",
    "UsageError",
    "ValidationError",
]

# How much of a reply body an error message may quote.
EXCERPT_LIMIT = 200
# How much of EnKash's own errorMessage an error keeps.
MESSAGE_LIMIT = 500
# How many of EnKash's sub-errors an error keeps, and how deep and long each may be.
SUB_ERROR_LIMIT = 20
_SUB_ERROR_DEPTH = 3
_SUB_ERROR_ITEMS = 10


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """Return at most ``limit`` characters of ``text``, marking a cut."""
    text = text[: limit * 4 + 64].strip()  # never strip megabytes to keep a few hundred
    return text if len(text) <= limit else text[:limit] + "…"


def bounded(value: Any, depth: int = _SUB_ERROR_DEPTH) -> Any:
    """A copy of a JSON value small enough to keep and print: strings cut to an
    excerpt, at most a few items per object or list, and nothing nested deeper."""
    if isinstance(value, str):
        return excerpt(value, 120)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth <= 0:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())[:_SUB_ERROR_ITEMS]
        return {excerpt(str(k), 60): bounded(v, depth - 1) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [bounded(v, depth - 1) for v in value[:_SUB_ERROR_ITEMS]]
    return excerpt(f"<{type(value).__name__}>", 60)


class EnkashError(Exception):
    """Root of every exception raised by enkash_async."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its state, not by calling __init__ again with the finished message
        # (which a subclass would parse as its own arguments: a ValidationError's errors).
        return (_unpickle, (type(self), self.args), self.__dict__)


def _unpickle(cls: type[EnkashError], args: tuple[Any, ...]) -> EnkashError:
    """An error of ``cls`` with ``args`` whose attributes pickle then restores."""
    error = cls.__new__(cls)
    error.args = args
    return error


class FieldError:
    """One broken rule: where (``path``, e.g. ``customer_key_contacts[0].mobile``) and why."""

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __repr__(self) -> str:
        return f"FieldError(path={self.path!r}, message={self.message!r})"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldError):
            return NotImplemented
        return (self.path, self.message) == (other.path, other.message)

    def __hash__(self) -> int:
        return hash((self.path, self.message))


class ValidationError(EnkashError, ValueError):
    """A request broke a documented rule; nothing was sent.

    ``errors`` lists every problem found, each a :class:`FieldError` naming its field.
    """

    def __init__(self, errors: Sequence[FieldError], *, model: str | None = None) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        self.model = model
        what = f"{model} is invalid" if model else "invalid input"
        lines = "; ".join(str(e) for e in self.errors)
        super().__init__(f"{what} ({len(self.errors)} problem(s)): {lines}")

    @property
    def fields(self) -> tuple[str, ...]:
        """The paths of the offending fields, in the order found."""
        return tuple(e.path for e in self.errors)

    def prefixed(self, prefix: str) -> ValidationError:
        """The same problems with ``prefix`` put before every path."""
        return ValidationError(
            [FieldError(_join_path(prefix, e.path), e.message) for e in self.errors],
            model=self.model,
        )


def _join_path(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


class TransportError(EnkashError):
    """The request did not complete at the HTTP level.

    ``sent`` is False only when the request surely never reached EnKash; ``request_id``
    is the ``X-Request-Id`` the request carried.
    """

    sent: bool = True

    def __init__(
        self, message: str, *, method: str = "", url: str = "", request_id: str | None = None
    ) -> None:
        self.method = method
        self.url = url
        self.request_id = request_id
        where = f" ({method} {url})" if method else ""
        tag = f" [request_id={request_id}]" if request_id else ""
        super().__init__(f"{message}{where}{tag}")


class ConnectError(TransportError):
    """The connection could not be made (refused, DNS failure, connect timeout)."""

    sent = False


class TLSError(ConnectError):
    """The TLS handshake with EnKash failed: the certificate is not trusted or does not
    match the host, or no TLS connection could be negotiated.

    Nothing was sent. It is never retried, since a retry meets the same certificate:
    fix the trust store (or pass ``ssl=`` an ``SSLContext`` that trusts the right CA).
    """


class RequestTimeoutError(TransportError):
    """EnKash did not send a complete reply in time; the request may have been processed."""


RequestTimeout = RequestTimeoutError
"""The old name of :class:`RequestTimeoutError`, kept as an alias."""


class APIError(EnkashError):
    """EnKash answered with an error, by HTTP status or in the reply envelope.

    Attributes: ``status`` (HTTP), ``error_type`` (EnKash's ``errorType``),
    ``response_code``, ``api_message`` (EnKash's ``errorMessage``), ``request_id``,
    ``sub_errors`` (EnKash's ``apiSubErrors``), ``retry_after`` (seconds, from
    ``Retry-After``) and ``body_excerpt`` (for replies that were not JSON).
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        error_type: str | None = None,
        response_code: int | None = None,
        request_id: str | None = None,
        sub_errors: Sequence[Any] = (),
        body_excerpt: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.error_type = error_type
        self.response_code = response_code
        self.request_id = request_id
        # Whatever EnKash sent, an error keeps (and prints) only a short excerpt of it.
        if message is not None:
            message = excerpt(message, MESSAGE_LIMIT)
        self.sub_errors: tuple[Any, ...] = tuple(
            bounded(sub) for sub in list(sub_errors[:SUB_ERROR_LIMIT])
        )
        self.sub_error_count = len(sub_errors)
        self.body_excerpt = None if body_excerpt is None else excerpt(body_excerpt)
        self.api_message = message
        parts = [f"HTTP {status}" if status is not None else "HTTP ?"]
        if error_type:
            parts.append(error_type)
        if response_code:
            parts.append(f"response_code {response_code}")
        text = " ".join(parts)
        if message:
            text += f": {message}"
        if self.sub_errors:
            text += (
                f" ({self.sub_error_count} field error(s): "
                f"{_summarise(self.sub_errors, self.sub_error_count)})"
            )
        if request_id:
            text += f" [request_id={request_id}]"
        super().__init__(text)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, error_type={self.error_type!r}, "
            f"response_code={self.response_code!r}, message={self.api_message!r}, "
            f"request_id={self.request_id!r})"
        )


def _summarise(sub_errors: Sequence[Any], total: int) -> str:
    shown = []
    for sub in sub_errors[:5]:
        if isinstance(sub, dict):
            field = sub.get("field") or sub.get("fieldName") or sub.get("object") or "?"
            msg = sub.get("message") or sub.get("errorMessage") or ""
            text = f"{field}: {msg}" if msg else str(field)
        else:
            text = str(sub)
        shown.append(excerpt(text, 120))
    more = f", +{total - 5} more" if total > 5 else ""
    return "; ".join(shown) + more


class BadRequestError(APIError):
    """EnKash refused the request as invalid (400, 422, VALIDATION_ERROR, …)."""


class AuthenticationError(APIError):
    """The token is missing, expired or invalid (401, UNAUTHORIZED, response_code 117)."""


class LoginError(AuthenticationError):
    """``POST /oauth/token`` refused the credentials.

    Never retried: EnKash locks an account after three failed logins.
    """


class PermissionDeniedError(APIError):
    """The credentials may not do this (403, INVALID_ACCESS)."""


class NotFoundError(APIError):
    """The record or route does not exist (404, RECORD_NOT_FOUND)."""


class RateLimitError(APIError):
    """Too many requests (429); ``retry_after`` is EnKash's requested wait in seconds, if any."""


class ServerError(APIError):
    """EnKash failed (5xx, SYSTEM_ERROR)."""


class UnexpectedResponseError(EnkashError):
    """The reply was not what the API documents: not JSON, HTML, truncated, or of the wrong shape.

    ``status`` is the HTTP status and ``body_excerpt`` a short start of the body;
    ``transient`` is True when the body could not be read whole (a read-only call may retry).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body_excerpt: str | None = None,
        request_id: str | None = None,
        transient: bool = False,
    ) -> None:
        self.status = status
        self.transient = transient
        body_excerpt = None if body_excerpt is None else excerpt(body_excerpt)
        self.body_excerpt = body_excerpt
        self.request_id = request_id
        text = message if status is None else f"HTTP {status}: {message}"
        if body_excerpt:
            text += f" (body starts {body_excerpt!r})"
        if request_id:
            text += f" [request_id={request_id}]"
        super().__init__(text)


class PaginationError(EnkashError):
    """A search returned pages that cannot be followed safely (a repeated page, a changed count)."""


class PaginationDriftWarning(UserWarning):
    """The total of a search changed between pages: rows may have been skipped or repeated."""


class AmbiguousCreateError(EnkashError):
    """A create failed after it may have reached EnKash, and could not be reconciled.

    The customer may or may not exist. Give every ``CustomerCreate`` a ``unique_ref_no``
    so the client can look it up and retry safely. ``cause`` is the failure seen.
    """

    def __init__(self, message: str, *, cause: EnkashError | None = None) -> None:
        self.cause = cause
        super().__init__(message)


class UsageError(EnkashError, RuntimeError):
    """Something was used out of order: a server started twice, or asked for before it
    started. A bug in the calling code; nothing was sent to EnKash."""
