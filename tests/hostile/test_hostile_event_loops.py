"""A client belongs to the event loop it first ran in: another loop gets a clear
``EnkashError``, and the first loop's connections are closed without a warning."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from enkash_async import EnkashClient, EnkashError


@pytest.fixture
def server_url() -> Iterator[str]:
    """A loopback server in its own thread and loop (the test drives asyncio.run itself)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def page(request: web.Request) -> web.Response:
        return web.json_response({"payload": {"data": [], "recordsCount": 0}})

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", page)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()))
    thread.start()
    ready.wait(10)
    yield f"http://127.0.0.1:{holder['port']}"
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)  # type: ignore[attr-defined]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_one_client_in_two_asyncio_runs_raises_a_clear_error_and_warns_of_nothing(
    server_url: str,
) -> None:
    client = EnkashClient(server_url, token="t")
    assert asyncio.run(client.customers.search().collect()) == []
    with pytest.raises(EnkashError, match="one event loop"):
        asyncio.run(client.customers.search().collect())
    del client
    gc.collect()  # an unclosed session or connector would warn here (warnings are errors)
