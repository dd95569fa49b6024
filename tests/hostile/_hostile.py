"""A small aiohttp.web server on 127.0.0.1 that answers every request with ``handler``:
the misbehaving EnKash (or proxy) of the hostile-server tests."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class Received:
    method: str
    path: str
    body: bytes


class Hostile:
    """``async with Hostile(handler) as server``: ``server.url``, and ``server.received``
    lists every request that reached it."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.certificate = certificate  # serve https with this (cert, key)
        self.received: list[Received] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(Received(request.method, request.path, await request.read()))
        return await self.handler(request)

    async def __aenter__(self) -> Hostile:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        context = None
        if self.certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.certificate)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if context else 'http'}://{self.host}:{port}"
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def envelope(payload: Any) -> dict[str, Any]:
    return {"errorResponse": None, "payload": payload, "response_code": 0}
