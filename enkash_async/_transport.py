"""HTTP to EnKash over aiohttp, and EnKash's reply envelope.

The transport sends one request and turns the reply into a payload or an
:class:`~enkash_async.errors.EnkashError`. It knows the envelope every EnKash API
shares (``errorResponse``, ``payload``, ``response_code``, ``response_message``) but
nothing of customers, and it never retries: that is ``_retry``'s job. Every aiohttp,
asyncio and JSON exception is translated here, where it arises.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import itertools
import os
import ssl as ssl_module
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs

from enkash_async._fast import loads, paused_gc
from enkash_async._version import __version__
from enkash_async.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    EnkashError,
    FieldError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    TLSError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
    excerpt,
)

__all__ = [
    "Timeouts",
    "Transport",
    "check_base_url",
    "new_request_id",
    "raise_for_envelope",
]

USER_AGENT = f"enkash-async/{__version__}"

# Request ids: random per process, then a counter (uuid4 per request costs a syscall).
_REQUEST_ID_PREFIX = os.urandom(6).hex()
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    """A request id unique across processes and calls, for ``X-Request-Id``."""
    return f"{_REQUEST_ID_PREFIX}-{next(_request_numbers):x}"

REQUEST_ID_HEADER = "X-Request-Id"
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


@attrs.frozen(kw_only=True)
class Timeouts:
    """How long one attempt may take: ``connect`` to open a connection, ``attempt`` for
    the whole request and reply. The overall budget across retries is ``RetryPolicy.deadline``."""

    connect: float = 10.0
    attempt: float = 60.0


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """Normalise ``base_url``; refuse plain http to anything but loopback unless allowed.

    Raises :class:`ValidationError`.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError([FieldError("base_url", f"must be an http(s) URL, got {base_url!r}")])
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ValidationError(
            [
                FieldError(
                    "base_url",
                    "plain http would send the token unencrypted; use https, or pass "
                    "allow_insecure_http=True for a trusted network",
                )
            ]
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Transport:
    """One aiohttp session to one EnKash base URL.

    The session is made lazily inside the running loop; a caller's own session is used
    as given and never closed here.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts = Timeouts(),
        max_connections: int = 100,
        ssl: ssl_module.SSLContext | bool = True,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.base_url = base_url
        self._session = session
        self._owns_session = session is None
        self.timeouts = timeouts
        self._max_connections = max_connections
        self._ssl = ssl
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._closed = False

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise EnkashError("the client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector)
        elif self._session.closed:  # only a caller's own session can be closed under us
            raise EnkashError("the aiohttp session given to the client is closed")
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport made it. Safe to call twice."""
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def post(
        self,
        path: str,
        *,
        body: bytes | None = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str],
        request_id: str,
        timeouts: Timeouts | None = None,
    ) -> tuple[int, Mapping[str, str], Any]:
        """POST and decode the JSON reply: ``(status, headers, decoded body)``.

        Raises :class:`ConnectError` (:class:`TLSError` for a failed TLS handshake),
        :class:`RequestTimeout`, :class:`TransportError`,
        an :class:`APIError` for a non-JSON error status, or :class:`UnexpectedResponseError`.
        """
        url = self.base_url + path
        all_headers = {**self._headers, **headers, REQUEST_ID_HEADER: request_id}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        t = timeouts or self.timeouts
        timeout = aiohttp.ClientTimeout(total=t.attempt, sock_connect=t.connect, connect=t.connect)
        session = self._get_session()
        try:
            async with session.post(
                url,
                data=body if body is not None else form,
                params=params,
                headers=all_headers,
                timeout=timeout,
            ) as response:
                raw = await response.read()
                status = response.status
                reply_headers = response.headers
                content_type = response.content_type
        except aiohttp.ConnectionTimeoutError as exc:
            raise ConnectError(
                "connecting to EnKash timed out", method="POST", url=url, request_id=request_id
            ) from exc
        except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch) as exc:
            # Before ClientConnectorError, its base: a certificate is no passing outage.
            raise TLSError(
                f"TLS handshake with EnKash failed: {_tls_reason(exc)}; not retried. Check "
                "the server certificate, or pass ssl= an SSLContext that trusts its CA",
                method="POST",
                url=url,
                request_id=request_id,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise ConnectError(
                f"could not connect to EnKash: {reason}",
                method="POST",
                url=url,
                request_id=request_id,
            ) from exc
        except (asyncio.TimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise RequestTimeout(
                f"no complete reply within {t.attempt:g}s",
                method="POST",
                url=url,
                request_id=request_id,
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"connection failed while talking to EnKash: {type(exc).__name__}",
                method="POST",
                url=url,
                request_id=request_id,
            ) from exc
        return status, reply_headers, _decode(raw, status, content_type, reply_headers, request_id)


def _tls_reason(exc: aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch) -> str:
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return "the certificate does not match the pinned fingerprint"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        detail = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
        return f"certificate not trusted ({detail or type(cause).__name__})"
    cause = exc.os_error
    return getattr(cause, "reason", None) or type(cause).__name__


# Above this size a reply is a page of records: parse it with the collector paused.
_LARGE_BODY = 256 * 1024


def _decode(
    raw: bytes, status: int, content_type: str, headers: Mapping[str, str], request_id: str
) -> Any:
    try:
        if len(raw) < _LARGE_BODY:
            return loads(raw)
        with paused_gc():
            return loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        text = raw[:400].decode("utf-8", "replace")
        looks_html = "html" in content_type or text.lstrip().startswith("<")
        what = (
            "an HTML page"
            if looks_html
            else ("an empty body" if not raw else "a body that is not JSON")
        )
        if status >= 400:
            error = _error_class(status, None, None)
            raise error(
                f"EnKash answered {what}",
                status=status,
                request_id=request_id,
                body_excerpt=excerpt(text),
                retry_after=retry_after_seconds(headers),
            ) from exc
        raise UnexpectedResponseError(
            f"EnKash answered {what}",
            status=status,
            body_excerpt=excerpt(text),
            request_id=request_id,
            transient=not looks_html,
        ) from exc


def raise_for_envelope(status: int, headers: Mapping[str, str], data: Any, request_id: str) -> Any:
    """Return the envelope's ``payload`` when the reply is a success, else raise.

    A success needs HTTP 2xx, ``response_code`` 0 or absent, and an ``errorResponse``
    with no ``errorType``/``errorMessage``. Raises the matching :class:`APIError`
    subclass, or :class:`UnexpectedResponseError` for a reply that is no envelope.
    """
    if not isinstance(data, dict):
        if status >= 400:
            raise _error_class(status, None, None)(
                "EnKash answered without an error envelope",
                status=status,
                request_id=request_id,
                body_excerpt=excerpt(repr(data)),
            )
        raise UnexpectedResponseError(
            f"reply is a JSON {type(data).__name__}, not an envelope object",
            status=status,
            request_id=request_id,
        )
    error = data.get("errorResponse")
    if not isinstance(error, dict):
        error = {}
    error_type = error.get("errorType")
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
        request_id=_str_or_none(error.get("requestId")) or request_id,
        sub_errors=[s for s in sub_errors if s] if isinstance(sub_errors, list) else (),
        retry_after=retry_after_seconds(headers),
    )


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
