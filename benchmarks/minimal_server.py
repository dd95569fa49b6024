"""A bare HTTP/1.1 server in a process of its own that answers every create with one
canned EnKash create reply, and every search with a pre-rendered page, for measuring the
client's own cost.

The fake EnKash validates and stores each create, and builds each page; on the same two
cores that work, not the client, sets the pace, and hides what the client spends. This
server spends next to nothing per request, so what separates the client from raw aiohttp
shows.

- ``--create synthetic`` (the default) answers a customer as the fake writes one;
  ``--create seed`` the ``createCustomer`` 200 example of EnKash's pages (its
  ``errorResponse`` placeholders, which read as a failure, made ``null``).
- ``--search SHAPE --records N``: ``POST /api/v0/customer/search`` pages through ``N``
  customers of a record set of :mod:`benchmarks.decode`. A page is rendered once per
  length; each request only writes its offset's customer ids into it, so every
  ``customerId`` of the stream is its own.

    python -m benchmarks.minimal_server [--create seed] [--search seed --records 200000]
    # prints {"url": ..., "token": ...}, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from enkash_async.testing._data import synthetic_customers

SEARCH_PATH = b"/api/v0/customer/search"
_ID_MARK = "__CUSTOMER_ID__"
_SEED_CREATE = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "seeds"
    / "create_customer.reply.json"
)


def _response(body: bytes) -> bytes:
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def create_envelope(kind: str = "synthetic") -> dict[str, Any]:
    """The create reply's JSON: a customer as the fake writes one, or the seed's example."""
    if kind == "seed":
        envelope: dict[str, Any] = json.loads(_SEED_CREATE.read_text(encoding="utf-8"))
        # The example's errorResponse is placeholders ("errorMessage": "string"): a failure.
        envelope["errorResponse"] = None
        return envelope
    record = next(iter(synthetic_customers(1, seed=1)))
    return {"errorResponse": None, "payload": record, "response_code": 0, "response_message": "OK"}


def canned_reply(kind: str = "synthetic") -> bytes:
    """One HTTP response: the create envelope of :func:`create_envelope`."""
    return _response(json.dumps(create_envelope(kind)).encode())


class Pages:
    """Search replies through ``total`` customers of record set ``shape``, by offset."""

    def __init__(self, shape: str, total: int) -> None:
        self.shape, self.total = shape, total
        self._templates: dict[int, bytes] = {}

    def reply(self, offset: int, limit: int) -> bytes:
        count = max(0, min(limit, self.total - offset))
        template = self._templates.get(count)
        if template is None:
            template = self._templates[count] = self._render(count)
        return _response(template % tuple(range(offset, offset + count)))

    def _render(self, count: int) -> bytes:
        from benchmarks.decode import page_body, records

        page = records(self.shape, count)
        for record in page:
            record["customerId"] = _ID_MARK
        body = page_body(page, self.total).replace(b"%", b"%%")
        return body.replace(f'"{_ID_MARK}"'.encode(), b'"KC%014d"')


class _Answer(asyncio.Protocol):
    """Answers each complete request (headers, then Content-Length bytes) on arrival."""

    def __init__(self, reply: bytes, pages: Pages | None) -> None:
        self._reply = reply
        self._pages = pages
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            lines = self._buffer[:end].split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            assert self._transport is not None
            self._transport.write(self._answer(lines[0]))

    def _answer(self, request_line: bytes) -> bytes:
        target = request_line.split(b" ")[1] if request_line.count(b" ") >= 2 else b"/"
        if self._pages is None or not target.startswith(SEARCH_PATH):
            return self._reply
        query = parse_qs(urlsplit(target.decode("latin-1")).query)
        offset = int(query.get("offset", ["0"])[0])
        limit = int(query.get("limit", ["5000"])[0])
        return self._pages.reply(offset, limit)


async def serve(create: str = "synthetic", search: str | None = None, total: int = 0) -> None:
    reply = canned_reply(create)
    pages = Pages(search, total) if search is not None else None
    if pages is not None:
        pages.reply(0, 5000)  # render the full page before saying ready
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Answer(reply, pages), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{port}", "token": "minimal-server"}), flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def minimal_server(
    create: str = "synthetic", search: str | None = None, records: int = 0
) -> Iterator[dict[str, str]]:
    """This server in a process of its own; yields its ``url`` and ``token``."""
    options = ["--create", create]
    if search is not None:
        options += ["--search", search, "--records", str(records)]
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.minimal_server", *options],
        stdout=subprocess.PIPE,
        text=True,
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--create", choices=("synthetic", "seed"), default="synthetic")
    parser.add_argument("--search", metavar="SHAPE", help="a record set of benchmarks.decode")
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.create, args.search, args.records))


if __name__ == "__main__":
    main()
