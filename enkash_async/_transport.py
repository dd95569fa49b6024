"""HTTP to EnKash, and EnKash's reply envelope.

:class:`Transport` is the seam (a Protocol): it sends one request and returns the
:class:`Reply` (status, headers, body bytes), bounded in size and never following a
redirect; :class:`AiohttpTransport` is the one over aiohttp. ``Reply.payload`` turns a
reply into the envelope's payload or an :class:`~enkash_async.errors.EnkashError`; it
knows the envelope every EnKash API shares (``errorResponse``, ``payload``,
``response_code``, ``response_message``) but nothing of customers. Nothing here
retries: that is ``_retry``'s job. Every aiohttp, asyncio and JSON exception is
translated here, where it arises.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import itertools
import mmap
import os
import ssl as ssl_module
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import attrs

from enkash_async._fast import JSONBytes, loads
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
    bounded,
    excerpt,
)

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "AiohttpTransport",
    "Reply",
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

    def within(self, seconds_left: float | None) -> Timeouts:
        """These timeouts, cut so an attempt cannot outlast ``seconds_left`` (None: no cut)."""
        if seconds_left is None or seconds_left >= self.attempt:
            return self
        left = max(seconds_left, _MIN_ATTEMPT)
        return Timeouts(connect=min(self.connect, left), attempt=left)


# How many aiohttp timeouts a transport keeps for reuse.
_TIMEOUTS_KEPT = 8

# The least time an attempt is given, even when the deadline is (nearly) spent.
_MIN_ATTEMPT = 0.05


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """Normalise ``base_url``; refuse plain http to anything but loopback unless allowed.

    Raises :class:`ValidationError`.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError([FieldError("base_url", f"must be an http(s) URL, got {base_url!r}")])
    if not _is_host_name(parts.hostname):
        raise ValidationError(
            [FieldError("base_url", f"{parts.hostname!r} is not a host name a request can use")]
        )
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


def _is_host_name(host: str) -> bool:
    # Checked when the client is built: aiohttp would raise a raw UnicodeError per request.
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        # NFKC maps characters such as "…" to dots, so check the labels after encoding.
        encoded = host.encode("idna").removesuffix(b".")
    except UnicodeError:
        return False
    labels = encoded.split(b".")
    return len(encoded) <= 253 and all(0 < len(label) <= 63 for label in labels)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Transport(Protocol):
    """The seam every HTTP request passes through (``EnkashClient(transport=...)``).

    ``post`` sends one request to ``path`` under the client's base URL and returns the
    :class:`Reply` unread by any envelope rule. It never follows a redirect, never
    retries, and raises only :class:`~enkash_async.errors.EnkashError` subclasses
    (``ConnectError`` when the request surely did not leave, ``RequestTimeout``,
    ``TransportError``, ``UnexpectedResponseError`` for a reply it refuses to read).
    """

    async def post(
        self,
        path: str,
        *,
        body: bytes | None = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str],
        request_id: str,
        timeouts: Timeouts,
    ) -> Reply:
        """POST ``body`` (JSON) or ``form`` and return the reply."""
        ...

    async def aclose(self) -> None:
        """Release what the transport holds. Safe to call twice."""
        ...


# The largest legitimate reply is a page of 5000 customers (about 4 KiB each with
# contacts and addresses): 64 MiB leaves three times that.
DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024

_READ_CHUNK = 256 * 1024

# Bodies this large are read into an anonymous memory map rather than a bytes object.
_MAPPED_BODY = 1024 * 1024

# A declared length is mapped once 1/_PROVEN of it has arrived.
_PROVEN = 8


class AiohttpTransport:
    """One aiohttp session to one EnKash base URL: the :class:`Transport` the client uses
    unless given another.

    The session is made lazily inside the running loop; a caller's own session is used
    as given and never closed here. A client belongs to the event loop it first ran in.
    Redirects are never followed. A reply body over ``max_reply_bytes`` is refused: by
    its ``Content-Length`` before it is read, or cut off while it streams.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = 100,
        ssl: ssl_module.SSLContext | bool = True,
        user_agent: str = USER_AGENT,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    ) -> None:
        self.base_url = base_url
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._ssl = ssl
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self.max_reply_bytes = max_reply_bytes
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # aiohttp timeouts by Timeouts: most requests share the client's, made once.
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}
        self._closer: asyncio.Task[None] | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise EnkashError("the client is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise EnkashError(
                "this client was first used in another event loop (each asyncio.run() makes "
                "a new one): a client belongs to one event loop; make a client per loop, "
                "inside it, and close it there"
            )
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl)
            self._session = aiohttp.ClientSession(connector=connector)
            # Closes the session when the loop ends (asyncio.run cancels every task left),
            # so a client never closed leaves no connection to warn about.
            self._closer = loop.create_task(_close_when_cancelled(self._session))
        elif self._session.closed:  # only a caller's own session can be closed under us
            raise EnkashError("the aiohttp session given to the client is closed")
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport made it. Safe to call twice."""
        self._closed = True
        if self._closer is not None:
            self._closer.cancel()
            if self._loop is asyncio.get_running_loop():
                await asyncio.gather(self._closer, return_exceptions=True)
            self._closer = None
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
        timeouts: Timeouts,
    ) -> Reply:
        """POST and read the reply whole (redirects are not followed, nor read).

        Raises :class:`ConnectError` (:class:`TLSError` for a failed TLS handshake),
        :class:`RequestTimeout`, :class:`TransportError`, or
        :class:`UnexpectedResponseError` for a body over ``max_reply_bytes``.
        """
        url = self.base_url + path
        all_headers = {**self._headers, **headers, REQUEST_ID_HEADER: request_id}
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        t = timeouts
        timeout = self._timeouts.get(t)
        if timeout is None:
            # sock_connect, not connect: aiohttp arms a connect timer even for a pooled
            # connection, and ``total`` already bounds the wait for a free one.
            timeout = aiohttp.ClientTimeout(total=t.attempt, sock_connect=t.connect)
            if len(self._timeouts) < _TIMEOUTS_KEPT:  # cut ones vary per call: keep a few
                self._timeouts[t] = timeout
        session = self._get_session()
        try:
            async with session.post(
                url,
                data=body if body is not None else form,
                params=params,
                headers=all_headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                reply_headers = response.headers
                if 300 <= status < 400:
                    raw: Body = b""  # a redirect's body is never read, nor its target sent anything
                else:
                    raw = await self._read(response, request_id)
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
        except (asyncio.TimeoutError, TimeoutError, aiohttp.SocketTimeoutError) as exc:
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
        except MemoryError as exc:  # pragma: no cover - only under a memory cap
            raise UnexpectedResponseError(
                "the reply did not fit in memory", request_id=request_id
            ) from exc
        return Reply(status=status, headers=reply_headers, body=raw, request_id=request_id)

    async def _read(self, response: aiohttp.ClientResponse, request_id: str) -> Body:
        """The body, refused unread when it says it is too large and cut when it grows so.

        A body of ``_MAPPED_BODY`` bytes or more comes back in an anonymous memory map,
        whose memory goes back to the OS when it is freed: large ``bytes`` come from
        malloc's heap, which a stream of 7 MB pages read side by side fragments, so the
        process's peak RSS crept up with the number of pages.
        """
        limit = self.max_reply_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            response.close()  # drop the connection rather than drain the body
            raise UnexpectedResponseError(
                f"the reply is {declared} bytes, over max_reply_bytes={limit}; not read",
                status=response.status,
                request_id=request_id,
            )
        if response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
            declared = None  # aiohttp decompresses: the body read is longer than declared
        elif declared is not None and declared < _MAPPED_BODY:
            # A small declared body (every create reply): aiohttp reads no further than
            # Content-Length, so one read is as bounded as the loop, and cheaper.
            return await response.read()
        # A declared length is mapped (and its memory committed) only once a share of it
        # has arrived: a few bytes of headers must not commit max_reply_bytes.
        proven = None if declared is None or declared < _MAPPED_BODY else declared // _PROVEN
        mapped: mmap.mmap | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await response.content.read(_READ_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > limit or (declared is not None and size > declared):
                response.close()
                what = f"max_reply_bytes={limit}" if size > limit else "its Content-Length"
                raise UnexpectedResponseError(
                    f"the reply grew past {what}; cut off",
                    status=response.status,
                    request_id=request_id,
                )
            if mapped is not None:
                mapped.write(chunk)
                continue
            chunks.append(chunk)
            if proven is not None and declared is not None and size >= proven:
                mapped = _mapped(chunks, declared)
                chunks.clear()
        if mapped is not None:
            return mapped if size == len(mapped) else mapped[:size]
        return _mapped(chunks, size) if size >= _MAPPED_BODY else b"".join(chunks)


def _mapped(chunks: list[bytes], capacity: int) -> mmap.mmap:
    """An anonymous memory map of ``capacity`` bytes, positioned after ``chunks``."""
    if sys.platform == "win32":  # pragma: no cover - no MAP_* flags there
        mapped = mmap.mmap(-1, capacity)
    else:
        # Committed at once: one call instead of a page fault per 4 KiB (half the CPU).
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
        mapped = mmap.mmap(-1, capacity, flags=flags)
    for chunk in chunks:
        mapped.write(chunk)
    return mapped


async def _close_when_cancelled(session: aiohttp.ClientSession) -> None:
    try:
        await asyncio.get_running_loop().create_future()  # until cancelled
    finally:
        await session.close()


def _tls_reason(exc: aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch) -> str:
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return "the certificate does not match the pinned fingerprint"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        detail = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
        return f"certificate not trusted ({detail or type(cause).__name__})"
    cause = exc.os_error
    return getattr(cause, "reason", None) or type(cause).__name__


# How many redirect statuses are refused, and the few that are worth naming.
_REDIRECT = range(300, 400)

# A reply body: bytes, or an anonymous memory map for a large one (see ``_read``).
Body = JSONBytes

Parse = Callable[[Body], Any]


@attrs.frozen(repr=False)
class Reply:
    """One HTTP reply as the transport read it: ``status``, ``headers`` and the raw
    ``body`` (bytes; a large one is an ``mmap.mmap``, whose slices are bytes);
    ``request_id`` is the ``X-Request-Id`` the request carried."""

    status: int
    headers: Mapping[str, str]
    body: Body
    request_id: str = ""

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
            return raise_for_envelope(self.status, self.headers, data, self.request_id)
        except RecursionError as exc:
            raise UnexpectedResponseError(
                "the reply is nested too deeply to read",
                status=self.status,
                request_id=self.request_id,
            ) from exc

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
        if status >= 400:
            error = _error_class(status, None, None)
            return error(
                f"EnKash answered {what}",
                status=status,
                request_id=self.request_id,
                body_excerpt=excerpt(text),
                retry_after=retry_after_seconds(self.headers),
            )
        return UnexpectedResponseError(
            f"EnKash answered {what}",
            status=status,
            body_excerpt=excerpt(text),
            request_id=self.request_id,
            transient=not looks_html,
        )


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
                body_excerpt=excerpt(repr(bounded(data))),
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
