"""A real aiohttp server on 127.0.0.1 for the transport tests: answers as a test says,
and records every request it received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import aiohttp
import attrs
from aiohttp import web
from multidict import CIMultiDict


@attrs.frozen
class Received:
    """One request as the loopback server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]  # names case-insensitive, as HTTP has them
    body: bytes


Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Loopback:
    """A real aiohttp server on 127.0.0.1 (``url``) answering every request with the
    handler given to :meth:`answer`; ``received`` lists each request in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[Received] = []
        self._answers: list[Answer] = []

    def answer(self, *handlers: Answer) -> None:
        """Answer the next requests with ``handlers`` in turn, the last one from then on."""
        self._answers = list(handlers)

    def reply(self, status: int = 200, body: Any = None, **headers: str) -> None:
        """Answer every request with ``status`` and ``body`` (JSON unless bytes or str)."""
        self.answer(respond(status, body, **headers))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(
            Received(
                request.method,
                request.path,
                dict(request.query),
                CIMultiDict(request.headers),
                await request.read(),
            )
        )
        handler = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        return await handler(request)


def respond(status: int = 200, body: Any = None, **headers: str) -> Answer:
    """A handler answering ``status`` with ``body``: bytes or text as they are, else JSON."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, headers=headers)
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return handler


async def hang_up(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering: the client sees the server disconnect."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)  # never reaches the client: the transport is closed


def hang(seconds: float = 30) -> Answer:
    """A handler that answers only after ``seconds`` (a client's timeout ends it first)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.Response(status=204)

    return handler


def failing_session(*errors: BaseException | None) -> aiohttp.ClientSession:
    """A real session whose requests fail with ``errors`` in turn (``None``: sent as
    usual; after the last, every request is sent), raised from aiohttp's own
    request-start trace hook: the failure aiohttp itself would raise, at the point it
    would (create it inside the event loop; the caller closes it)."""
    pending = list(errors)

    async def on_start(session: Any, context: SimpleNamespace, params: Any) -> None:
        error = pending.pop(0) if pending else None
        if error is not None:
            raise error

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return aiohttp.ClientSession(trace_configs=[trace])


@asynccontextmanager
async def serving(port: int = 0) -> AsyncIterator[Loopback]:
    """A :class:`Loopback` listening on ``port`` (0: a free one) until the block ends."""
    app = web.Application()
    holder: list[Loopback] = []

    async def dispatch(request: web.Request) -> web.StreamResponse:
        return await holder[0].handle(request)

    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)  # a hang ends now
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    holder.append(Loopback(f"http://127.0.0.1:{port}"))
    try:
        yield holder[0]
    finally:
        await runner.cleanup()
