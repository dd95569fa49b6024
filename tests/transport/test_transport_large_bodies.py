"""Large reply bodies are read into anonymous memory maps, which go back to the OS when
freed (large ``bytes`` would come from malloc's heap, which a stream of pages fragments),
and are read, refused and cut exactly as bytes are."""

from __future__ import annotations

import asyncio
import gzip
import json
import mmap
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import enkash_async._transport as transport_module
from enkash_async import EnkashClient, RetryPolicy, UnexpectedResponseError
from enkash_async._fast import loads
from enkash_async._reply import Reply
from enkash_async._transport import AiohttpTransport, Timeouts

MIB = 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """A local aiohttp server answering every POST with ``handler``; yields its URL."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def post(url: str, **kwargs: Any) -> Reply:
    transport = AiohttpTransport(url, **kwargs)
    try:
        return await transport.post(
            "/api", body=b"{}", headers={}, request_id="r1", timeouts=Timeouts(attempt=10)
        )
    finally:
        await transport.aclose()


def sized(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes."""
    return b'{"pad": "' + b"x" * (size - 11) + b'"}'


def answering(body: bytes, *, chunked: bool = False) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(body)
        await response.prepare(request)
        for start in range(0, len(body), 100_000):
            await response.write(body[start : start + 100_000])
        await response.write_eof()
        return response

    return handler


async def test_a_large_body_with_a_content_length_is_read_whole_into_a_memory_map() -> None:
    body = sized(3 * MIB + 17)
    async with serving(answering(body)) as url:
        reply = await post(url)
    assert isinstance(reply.body, mmap.mmap)
    assert reply.body[:] == body


async def test_a_large_chunked_body_is_read_whole_into_a_memory_map() -> None:
    body = sized(2 * MIB + 5)
    async with serving(answering(body, chunked=True)) as url:
        reply = await post(url)
    assert isinstance(reply.body, mmap.mmap)
    assert reply.body[:] == body


async def test_a_small_body_stays_bytes() -> None:
    body = sized(MIB - 1)
    async with serving(answering(body)) as url:
        reply = await post(url)
    assert type(reply.body) is bytes
    assert reply.body == body


async def test_a_large_chunked_body_past_max_reply_bytes_is_cut() -> None:
    async with serving(answering(sized(3 * MIB), chunked=True)) as url:
        with pytest.raises(UnexpectedResponseError, match="grew past max_reply_bytes"):
            await post(url, max_reply_bytes=2 * MIB)


async def test_a_mapped_body_that_is_not_json_is_a_typed_error_with_an_excerpt() -> None:
    page = b"<html>" + b"<p>busy</p>" * (MIB // 10) + b"</html>"
    async with serving(answering(page)) as url:
        reply = await post(url)
    assert isinstance(reply.body, mmap.mmap)
    with pytest.raises(UnexpectedResponseError, match="an HTML page") as caught:
        reply.json()
    assert "<html><p>busy</p>" in str(caught.value.body_excerpt)


def test_a_mapped_body_with_nan_is_read_by_the_fallback_parser() -> None:
    body = b'{"value": NaN, "pad": "' + b"x" * MIB + b'"}'
    mapped = mmap.mmap(-1, len(body))
    mapped.write(body)
    data = loads(mapped)
    assert data["value"] != data["value"]  # NaN
    assert len(data["pad"]) == MIB


async def test_a_search_page_in_a_mapped_body_streams_every_customer() -> None:
    records = [
        {"customerId": f"C{i:05d}", "id": i, "legalName": "Acme " + "x" * 3000} for i in range(500)
    ]
    page = json.dumps({"payload": {"data": records, "recordsCount": 500}}).encode()
    assert len(page) > MIB
    async with (
        serving(answering(page)) as url,
        EnkashClient(url, token="t", retry=RetryPolicy.none()) as client,
    ):
        ids = [customer.customer_id async for customer in client.customers.search(page_size=500)]
    assert ids == [f"C{i:05d}" for i in range(500)]


# --------------------------------------------------------------------------- commitment


class Scripted:
    """Stands in for an aiohttp response: declares ``declared`` bytes, then hands out
    ``chunks`` one read at a time, then ``then`` (an exception) or the end of the body."""

    status = 200

    def __init__(
        self, declared: int | None, chunks: list[bytes], then: BaseException | None = None
    ) -> None:
        self.content_length = declared
        self.headers: dict[str, str] = {}
        self._chunks = list(chunks)
        self._then = then
        self.content = self
        self.closed = False

    async def read(self, _n: int) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        if self._then is not None:
            raise self._then
        return b""

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def maps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The capacity of every memory map the transport makes while the test runs."""
    made: list[int] = []
    real = transport_module._mapped

    def recording(chunks: list[bytes], capacity: int) -> mmap.mmap:
        made.append(capacity)
        return real(chunks, capacity)

    monkeypatch.setattr(transport_module, "_mapped", recording)
    return made


async def read(response: Scripted) -> Any:
    """The body ``_read`` makes of ``response``."""
    transport = AiohttpTransport("http://127.0.0.1:1")
    return await transport._read(response, "r1")  # type: ignore[arg-type]


async def test_a_declared_length_is_not_committed_before_an_eighth_of_it_arrives(
    maps: list[int],
) -> None:
    stalled = Scripted(40 * MIB, [b"x" * MIB] * 4, then=asyncio.TimeoutError())
    with pytest.raises(asyncio.TimeoutError):
        await read(stalled)
    assert maps == []


async def test_a_declared_length_is_mapped_whole_once_an_eighth_of_it_arrived(
    maps: list[int],
) -> None:
    body = sized(16 * MIB)
    chunks = [body[i : i + MIB] for i in range(0, len(body), MIB)]
    assert (await read(Scripted(len(body), chunks)))[:] == body
    assert maps == [len(body)]


async def test_a_body_longer_than_its_content_length_is_cut() -> None:
    response = Scripted(2 * MIB, [b"x" * MIB] * 3)
    with pytest.raises(UnexpectedResponseError, match="grew past its Content-Length"):
        await read(response)
    assert response.closed


async def test_a_large_compressed_body_is_read_whole_past_its_content_length() -> None:
    body = b'{"pad": "' + os.urandom(2 * MIB).hex().encode() + b'"}'
    packed = gzip.compress(body)
    assert MIB < len(packed) < len(body)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=packed, headers={"Content-Encoding": "gzip"})

    async with serving(handler) as url:
        reply = await post(url)
    assert reply.body[:] == body
