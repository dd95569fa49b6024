"""How the aiohttp transport turns failures below HTTP into the client's errors.

Refused connections, connect and read timeouts, DNS failures and disconnects are each an
:class:`EnkashError` subclass chained to the aiohttp exception; none escapes raw. Real
servers on 127.0.0.1; a failure no loopback server can cause (DNS, a connect timeout) is
raised by a real aiohttp session from its request-start trace hook (``failing_session``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from _loopback import Loopback, failing_session, hang, hang_up

from enkash_async import (
    ConnectError,
    CustomerSearch,
    EnkashClient,
    EnkashError,
    RequestTimeoutError,
    RetryPolicy,
    Timeouts,
    TransportError,
    UnexpectedResponseError,
)
from enkash_async._reply import Reply

NO_RETRY = RetryPolicy.none()


@pytest.fixture
async def client(loopback: Loopback) -> AsyncIterator[EnkashClient]:
    async with EnkashClient(loopback.url, token="tok-errors", retry=NO_RETRY) as c:
        yield c


@asynccontextmanager
async def failing(loopback: Loopback, error: BaseException) -> AsyncIterator[EnkashClient]:
    """A client whose one request fails in aiohttp with ``error``."""
    async with (
        failing_session(error) as session,
        EnkashClient(loopback.url, token="t", session=session, retry=NO_RETRY) as client,
    ):
        yield client


async def search_once(client: EnkashClient) -> list[Any]:
    return await client.customers.search(CustomerSearch(), page_size=10).collect()


# --------------------------------------------------------------------------- transport


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_connection_refused_is_connect_error() -> None:
    async with EnkashClient(f"http://127.0.0.1:{_free_port()}", token="t", retry=NO_RETRY) as c:
        with pytest.raises(ConnectError) as info:
            await search_once(c)
    assert info.value.sent is False
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


@pytest.mark.parametrize(
    "make_error",
    [
        lambda: aiohttp.ConnectionTimeoutError("connect timed out"),
        lambda: aiohttp.ClientConnectorDNSError(
            aiohttp.client_reqrep.ConnectionKey(
                "api.enkash.test", 443, True, True, None, None, None
            ),
            OSError(-2, "Name or service not known"),
        ),
    ],
    ids=["connect-timeout", "dns"],
)
async def test_connect_timeout_and_dns_failure_are_connect_errors(
    loopback: Loopback, make_error: Callable[[], Exception]
) -> None:
    async with failing(loopback, make_error()) as client:
        with pytest.raises(ConnectError) as info:
            await search_once(client)
    assert isinstance(info.value.__cause__, aiohttp.ClientError)
    assert loopback.received == []


@pytest.mark.parametrize(
    "make_error",
    [
        lambda: asyncio.TimeoutError(),
        lambda: aiohttp.SocketTimeoutError("read timed out"),
        lambda: TimeoutError(),  # on Python 3.10 not an asyncio.TimeoutError
    ],
    ids=["total", "socket-read", "builtin"],
)
async def test_each_kind_of_timeout_aiohttp_raises_is_request_timeout(
    loopback: Loopback, make_error: Callable[[], Exception]
) -> None:
    async with failing(loopback, make_error()) as client:
        with pytest.raises(RequestTimeoutError) as info:
            await search_once(client)
    assert info.value.sent is True
    assert isinstance(info.value.__cause__, (asyncio.TimeoutError, TimeoutError))


async def test_a_server_that_does_not_answer_in_time_is_request_timeout(
    loopback: Loopback,
) -> None:
    loopback.answer(hang(30))
    timeouts = Timeouts(attempt=0.5)
    async with EnkashClient(loopback.url, token="t", retry=NO_RETRY, timeouts=timeouts) as client:
        with pytest.raises(RequestTimeoutError) as info:
            await search_once(client)
    assert info.value.sent is True
    assert len(loopback.received) == 1


async def _serve_once(
    reply: bytes,
) -> tuple[asyncio.Server, Callable[[], Awaitable[None]]]:
    """A raw TCP server that answers every request with ``reply`` and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return server, stop


async def test_disconnect_while_reading_the_body_is_transport_error() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    server, stop = await _serve_once(head + b'{"payload": {"data": [')
    port = server.sockets[0].getsockname()[1]
    try:
        async with EnkashClient(f"http://127.0.0.1:{port}", token="t", retry=NO_RETRY) as c:
            with pytest.raises(TransportError) as info:
                await search_once(c)
    finally:
        await stop()
    assert not isinstance(info.value, (ConnectError, UnexpectedResponseError))
    assert isinstance(info.value.__cause__, aiohttp.ClientError)


async def test_server_disconnect_is_transport_error(
    client: EnkashClient, loopback: Loopback
) -> None:
    loopback.answer(hang_up)
    with pytest.raises(TransportError) as info:
        await search_once(client)
    assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)


# --------------------------------------------------------------------------- not EnKash


@pytest.mark.parametrize(
    ("status", "body", "content_type", "what"),
    [
        (501, "<html><body>Not Implemented</body></html>", "text/html", "an HTML page"),
        (200, "<html>a login portal</html>", "text/html", "an HTML page"),
        (200, "plain words", "text/plain", "a body that is not JSON"),
        (502, "", "text/plain", "an empty body"),
    ],
)
async def test_a_reply_that_is_not_enkash_names_the_url_that_gave_it(
    loopback: Loopback, status: int, body: str, content_type: str, what: str
) -> None:
    loopback.reply(status, body.encode(), **{"Content-Type": content_type})
    async with EnkashClient(loopback.url, token="t", retry=NO_RETRY) as client:
        with pytest.raises(EnkashError) as caught:
            await search_once(client)

    url = f"{loopback.url}/api/v0/customer/search"
    assert f"{what} from {url}" in str(caught.value)
    assert "?" not in str(caught.value)  # the query is not shown: it may carry secrets


async def test_a_reply_that_is_no_envelope_names_the_url_that_gave_it(loopback: Loopback) -> None:
    loopback.reply(200, [1, 2, 3])
    async with EnkashClient(loopback.url, token="t", retry=NO_RETRY) as client:
        with pytest.raises(UnexpectedResponseError) as caught:
            await search_once(client)

    assert f"from {loopback.url}/api/v0/customer/search" in str(caught.value)


def test_a_reply_url_is_shown_redacted() -> None:
    reply = Reply(
        502, {"Content-Type": "text/html"}, b"<html/>", "r", url="https://u:pw@h/p?token=s3"
    )

    message = str(reply._unreadable(ValueError("not JSON")))

    assert "https://u:***@h/p?token=***" in message
    assert "pw" not in message and "s3" not in message
