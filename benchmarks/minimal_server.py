"""A bare HTTP/1.1 server in a process of its own that answers every request with one
canned EnKash create reply, for measuring the client's own cost per create.

The fake EnKash validates and stores each create; on the same two cores that work,
not the client, sets the pace, and hides what the client spends. This server spends
next to nothing per request, so what separates the client from raw aiohttp shows.

    python -m benchmarks.minimal_server   # prints {"url": ..., "token": ...}, serves until killed
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from enkash_async.testing._data import synthetic_customers


def canned_reply() -> bytes:
    """One HTTP response: a create envelope around a customer as the fake writes one."""
    record = next(iter(synthetic_customers(1, seed=1)))
    body = json.dumps(
        {"errorResponse": None, "payload": record, "response_code": 0, "response_message": "OK"}
    ).encode()
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class _Answer(asyncio.Protocol):
    """Answers each complete request (headers, then Content-Length bytes) on arrival."""

    def __init__(self, reply: bytes) -> None:
        self._reply = reply
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self._buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            assert self._transport is not None
            self._transport.write(self._reply)


async def serve() -> None:
    reply = canned_reply()
    server = await asyncio.get_running_loop().create_server(lambda: _Answer(reply), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}", "token": "minimal-server"}), flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def minimal_server() -> Iterator[dict[str, str]]:
    """This server in a process of its own; yields its ``url`` and ``token``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.minimal_server"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the minimal server exited before it was ready")
        yield json.loads(line)
    finally:
        process.kill()
        process.wait()


if __name__ == "__main__":
    asyncio.run(serve())
