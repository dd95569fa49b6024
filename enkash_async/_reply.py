"""EnKash's reply envelope: what a reply means, and the one place an unreadable reply
becomes an error.

Every EnKash API answers in one envelope (``errorResponse``, ``payload``, ``response_code``,
``response_message``). :class:`Reply` is one HTTP reply as a transport read it;
:meth:`Reply.decode` parses it, checks the envelope and decodes the payload, and
:func:`decoded` is the rule it applies to a decoder's failure, for callers (the paginator)
that decode records later. The error tables map statuses and ``errorType`` values to the
:class:`~enkash_async.errors.APIError` subclasses. Nothing here knows customers or HTTP
libraries, in the way ``testing/_envelope.py`` is the fake server's side of the envelope.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs

from enkash_async._fast import JSONBytes, loads
from enkash_async._urls import redact_url
from enkash_async.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    EnkashError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
    bounded,
    excerpt,
)

__all__ = [
    "TOKEN_INVALID_CODE",
    "Body",
    "Parse",
    "Reply",
    "decoded",
    "raise_for_envelope",
    "retry_after_seconds",
]

T = TypeVar("T")

# A reply body: bytes, or an anonymous memory map for a large one (see the transport).
Body = JSONBytes

Parse = Callable[[Body], Any]

# Statuses that are redirects: never followed, and never a success.
_REDIRECT = range(300, 400)

TOKEN_INVALID_CODE = 117

_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}
_TYPE_ERRORS: dict[str, type[APIError]] = {
    "VALIDATION_ERROR": BadRequestError,
    "UNPROCESSABLE_REQUEST": BadRequestError,
    "CLIENT_REQUEST_ERROR": BadRequestError,
    "UNAUTHORIZED": AuthenticationError,
    "INVALID_ACCESS": PermissionDeniedError,
    "RECORD_NOT_FOUND": NotFoundError,
    "SYSTEM_ERROR": ServerError,
}


@attrs.frozen(repr=False)
class Reply:
    """One HTTP reply as the transport read it: ``status``, ``headers`` and the raw
    ``body`` (bytes; a large one is an ``mmap.mmap``, whose slices are bytes);
    ``request_id`` is the ``X-Request-Id`` the request carried, ``url`` where it went
    (without the query; shown only through :func:`~enkash_async._urls.redact_url`)."""

    status: int
    headers: Mapping[str, str]
    body: Body
    request_id: str = ""
    url: str = ""

    def __repr__(self) -> str:
        return f"Reply(status={self.status}, body=<{len(self.body)} bytes>)"

    def json(self, parse: Parse = loads) -> Any:
        """The body parsed by ``parse`` (``_fast.loads`` unless given).

        ``parse`` returns the envelope as JSON values (dicts, lists, ...); a leaf it
        leaves opaque (say ``msgspec.Raw`` records) is the decoder's to read. Raises
        :class:`UnexpectedResponseError` for a redirect (never followed) and for a
        success that is not JSON, the status's :class:`APIError` for an error that is not.
        """
        if self.status in _REDIRECT:
            raise UnexpectedResponseError(
                f"EnKash answered with a redirect to {_target_host(self.headers)}; "
                "redirects are never followed, so nothing was sent there",
                status=self.status,
                request_id=self.request_id,
            )
        try:
            return parse(self.body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise self._unreadable(exc) from exc

    def payload(self, parse: Parse = loads) -> Any:
        """The envelope's ``payload`` when the reply is a success, else raise.

        Raises like :meth:`json` and :func:`raise_for_envelope`; a reply too deeply
        nested to read is an :class:`UnexpectedResponseError`.
        """
        data = self.json(parse)
        try:
            return raise_for_envelope(
                self.status, self.headers, data, self.request_id, url=self.url
            )
        except RecursionError as exc:
            raise UnexpectedResponseError(
                "the reply is nested too deeply to read",
                status=self.status,
                request_id=self.request_id,
            ) from exc

    def decode(self, decode: Callable[[Any], T], parse: Parse = loads) -> T:
        """The envelope's payload read by ``decode``: parsed, checked, decoded in one step.

        The one place a reply that cannot be read becomes an error: raises like
        :meth:`payload`, and :class:`UnexpectedResponseError` (with this reply's status and
        request id) for a payload ``decode`` cannot read.
        """
        return decoded(decode, self.payload(parse), status=self.status, request_id=self.request_id)

    def _unreadable(self, exc: Exception) -> EnkashError:
        status, raw = self.status, self.body
        if isinstance(exc, RecursionError):
            return UnexpectedResponseError(
                "the reply is nested too deeply to read", status=status, request_id=self.request_id
            )
        text = raw[:400].decode("utf-8", "replace")
        content_type = self.headers.get("Content-Type", "") or ""
        looks_html = "html" in content_type or text.lstrip().startswith("<")
        what = (
            "an HTML page"
            if looks_html
            else ("an empty body" if not raw else "a body that is not JSON")
        )
        # Most often not EnKash at all (a proxy, a portal, a wrong base URL): say where.
        said = f"got {what} from {_shown(self.url)}, not an EnKash reply" if self.url else ""
        said = said or f"EnKash answered {what}"
        if status >= 400:
            error = _error_class(status, None, None)
            return error(
                said,
                status=status,
                request_id=self.request_id,
                body_excerpt=excerpt(text),
                retry_after=retry_after_seconds(self.headers),
            )
        return UnexpectedResponseError(
            said,
            status=status,
            body_excerpt=excerpt(text),
            request_id=self.request_id,
            transient=not looks_html,
        )


def decoded(
    decode: Callable[[Any], T],
    value: Any,
    *,
    status: int | None = None,
    request_id: str | None = None,
) -> T:
    """``decode(value)``, where any failure to read ``value`` is an :class:`EnkashError`.

    The rule for a payload or record a decoder cannot read, whichever decoder it is (the
    msgspec reader, cattrs, a caller's own): an :class:`UnexpectedResponseError` carrying
    the reply's ``status`` and ``request_id`` when known.
    """
    try:
        return decode(value)
    except UnexpectedResponseError as exc:
        if exc.request_id is not None or request_id is None:
            raise
        raise UnexpectedResponseError(exc.message, status=status, request_id=request_id) from exc
    except EnkashError:
        raise
    except (RecursionError, ValueError, TypeError) as exc:
        raise UnexpectedResponseError(
            f"the reply could not be read ({type(exc).__name__})",
            status=status,
            request_id=request_id,
        ) from exc


def _target_host(headers: Mapping[str, str]) -> str:
    """Where a redirect points, as a host name (never the full URL: it may carry secrets)."""
    location = headers.get("Location")
    if not location:
        return "no Location"
    try:
        parts = urlsplit(location)
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        return "the same host" if location.startswith("/") else "an unreadable Location"
    return excerpt(f"{parts.scheme}://{host}" if parts.scheme else host, 80)


def raise_for_envelope(
    status: int, headers: Mapping[str, str], data: Any, request_id: str, *, url: str = ""
) -> Any:
    """Return the envelope's ``payload`` when the reply is a success, else raise.

    A success needs HTTP 2xx, ``response_code`` 0 or absent, and an ``errorResponse``
    with no ``errorType``/``errorMessage``. Raises the matching :class:`APIError`
    subclass, or :class:`UnexpectedResponseError` for a reply that is no envelope (its
    message names ``url``, redacted, when given).
    """
    if not isinstance(data, dict):
        origin = f" from {_shown(url)}" if url else ""
        if status >= 400:
            raise _error_class(status, None, None)(
                f"got a reply without an error envelope{origin}",
                status=status,
                request_id=request_id,
                body_excerpt=excerpt(repr(bounded(data))),
            )
        raise UnexpectedResponseError(
            f"reply{origin} is a JSON {type(data).__name__}, not an envelope object",
            status=status,
            request_id=request_id,
        )
    error = data.get("errorResponse")
    if not isinstance(error, dict):
        error = {}
    error_type = error.get("errorType")
    if isinstance(error_type, str):
        error_type = excerpt(error_type, 60)
    message = error.get("errorMessage")
    raw_code = data.get("response_code")
    response_code = raw_code
    if not isinstance(raw_code, int) or isinstance(raw_code, bool):
        response_code = _int_or_none(raw_code)
        if raw_code is not None and response_code is None and 200 <= status < 300:
            # An unreadable code cannot vouch for success.
            raise UnexpectedResponseError(
                f"response_code is not a number: {excerpt(repr(raw_code), 40)}",
                status=status,
                request_id=request_id,
            )
    if 200 <= status < 300 and not response_code and not error_type and not message:
        return data.get("payload")
    sub_errors = error.get("apiSubErrors")
    cls = _error_class(status, error_type if isinstance(error_type, str) else None, response_code)
    raise cls(
        message if isinstance(message, str) else _fallback_message(data),
        status=status,
        error_type=error_type if isinstance(error_type, str) else None,
        response_code=response_code,
        request_id=excerpt(_str_or_none(error.get("requestId")) or request_id, 80),
        sub_errors=[s for s in sub_errors if s] if isinstance(sub_errors, list) else (),
        retry_after=retry_after_seconds(headers),
    )


def _shown(url: str) -> str:
    """A URL as an error message may show it: secrets redacted, short."""
    return excerpt(redact_url(url), 200)


def _error_class(status: int, error_type: str | None, response_code: int | None) -> type[APIError]:
    if status >= 300:
        if status in _STATUS_ERRORS:
            return _STATUS_ERRORS[status]
        if status >= 500:
            return ServerError
    if response_code == TOKEN_INVALID_CODE:
        return AuthenticationError
    if error_type in _TYPE_ERRORS:
        return _TYPE_ERRORS[error_type]
    return APIError


def _fallback_message(data: dict[str, Any]) -> str | None:
    """The reason in an envelope without ``errorMessage``: ``response_message``, or the
    OAuth-style ``error_description``/``error`` the token endpoint answers with."""
    for key in ("response_message", "error_description", "error", "message"):
        text = _str_or_none(data.get(key))
        if text:
            return excerpt(text)
    return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity
        return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds from now (it may be seconds or an HTTP date), or None."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
