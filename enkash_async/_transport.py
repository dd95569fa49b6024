"""HTTP to EnKash: the transport seam and the aiohttp transport.

:class:`Transport` is the seam (a Protocol): it sends one request and returns the
:class:`~enkash_async._reply.Reply` (status, headers, body bytes), bounded in size and
never following a redirect; :class:`AiohttpTransport` is the one over aiohttp, reading
large bodies into memory maps. What a reply means is ``_reply``'s; where a request may go
is ``_urls``'; nothing here retries (``_retry``) or knows customers. Every aiohttp and
asyncio exception is translated here, where it arises.
"""

from __future__ import annotations

import asyncio
import itertools
import mmap
import os
import ssl as ssl_module
import sys
from collections.abc import Mapping, Sequence
from typing import Protocol

import aiohttp
import attrs

from enkash_async._reply import Body, Reply
from enkash_async._version import __version__
from enkash_async.errors import (
    ConnectError,
    EnkashError,
    RequestTimeoutError,
    TLSError,
    TransportError,
    UnexpectedResponseError,
)

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "REQUEST_ID_HEADER",
    "USER_AGENT",
    "AiohttpTransport",
    "Timeouts",
    "Transport",
    "new_request_id",
]

USER_AGENT = f"enkash-async/{__version__}"

# Request ids: random per process, then a counter (uuid4 per request costs a syscall).
_REQUEST_ID_PREFIX = os.urandom(6).hex()
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    """A request id unique across processes and calls, for ``X-Request-Id``."""
    return f"{_REQUEST_ID_PREFIX}-{next(_request_numbers):x}"


REQUEST_ID_HEADER = "X-Request-Id"


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


class Transport(Protocol):
    """The seam every HTTP request passes through (``EnkashClient(transport=...)``).

    ``request`` sends one request to ``path`` under the client's base URL and returns the
    :class:`Reply` unread by any envelope rule. It never follows a redirect, never
    retries, and raises only :class:`~enkash_async.errors.EnkashError` subclasses
    (``ConnectError`` when the request surely did not leave, ``RequestTimeoutError``,
    ``TransportError``, ``UnexpectedResponseError`` for a reply it refuses to read).
    """

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str],
        request_id: str,
        timeouts: Timeouts,
    ) -> Reply:
        """Send ``method`` with ``body`` (JSON), ``form`` or nothing, and return the reply."""
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
    ``trace_configs`` (aiohttp's request tracing) go to the session it makes, not to a
    caller's own.
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
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self.base_url = base_url
        self._trace_configs = list(trace_configs)
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
            self._session = aiohttp.ClientSession(
                connector=connector, trace_configs=self._trace_configs or None
            )
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
        """``request("POST", ...)``, kept for callers of the transport before ``request``."""
        return await self.request(
            "POST",
            path,
            body=body,
            form=form,
            params=params,
            headers=headers,
            request_id=request_id,
            timeouts=timeouts,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str],
        request_id: str,
        timeouts: Timeouts,
    ) -> Reply:
        """Send ``method`` and read the reply whole (redirects are not followed, nor read).

        Raises :class:`ConnectError` (:class:`TLSError` for a failed TLS handshake),
        :class:`RequestTimeoutError`, :class:`TransportError`, or
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
            async with session.request(
                method,
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
                "connecting to EnKash timed out", method=method, url=url, request_id=request_id
            ) from exc
        except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch) as exc:
            # Before ClientConnectorError, its base: a certificate is no passing outage.
            raise TLSError(
                f"TLS handshake with EnKash failed: {_tls_reason(exc)}; not retried. Check "
                "the server certificate, or pass ssl= an SSLContext that trusts its CA",
                method=method,
                url=url,
                request_id=request_id,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise ConnectError(
                f"could not connect to EnKash: {reason}",
                method=method,
                url=url,
                request_id=request_id,
            ) from exc
        except (asyncio.TimeoutError, TimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise RequestTimeoutError(
                f"no complete reply within {t.attempt:g}s",
                method=method,
                url=url,
                request_id=request_id,
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"connection failed while talking to EnKash: {type(exc).__name__}",
                method=method,
                url=url,
                request_id=request_id,
            ) from exc
        except MemoryError as exc:  # pragma: no cover - only under a memory cap
            raise UnexpectedResponseError(
                "the reply did not fit in memory", request_id=request_id
            ) from exc
        return Reply(status, reply_headers, raw, request_id, url=url)  # url: no query

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
