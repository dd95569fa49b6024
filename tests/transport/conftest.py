"""Setup for the aiohttp transport's tests, the only ones that mock aiohttp (aioresponses)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import aioresponses.core
import pytest
from _loopback import Loopback, serving
from aiohttp.client_proto import ResponseHandler


@pytest.fixture(autouse=True)
def aioresponses_for_aiohttp_314() -> Iterator[None]:
    """aioresponses 0.7.9 predates aiohttp 3.14's required ``stream_writer`` (issue #289):
    patched for these tests only."""
    if "stream_writer" not in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        yield
        return

    class CompatResponse(aiohttp.ClientResponse):
        def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
            super().__init__(method, url, **kwargs)

    def stream_reader_factory(loop: Any = None) -> aiohttp.StreamReader:
        # 3.14 pauses a parser-less protocol when a mocked body passes 2 * limit bytes.
        return aiohttp.StreamReader(ResponseHandler(loop=loop), limit=2**30, loop=loop)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aioresponses.core, "ClientResponse", CompatResponse)
        patch.setattr(aioresponses.core, "stream_reader_factory", stream_reader_factory)
        yield


@pytest.fixture
async def loopback() -> AsyncIterator[Loopback]:
    """A real aiohttp server on 127.0.0.1; the test says how it answers."""
    async with serving() as server:
        yield server
