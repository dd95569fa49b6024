"""``enkash-async serve``: a FakeEnkash on a port, with the lines that connect the CLI to it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import pytest
from _cli import (
    no_traceback,
    run,
)

from enkash_async import EnkashClient
from enkash_async.testing import DEFAULT_CREDENTIALS, FakeEnkash


async def test_serve_on_port_0_prints_a_url_that_answers_and_stops_on_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "enkash_async",
        "serve",
        "--port",
        "0",
        "--customers",
        "7",
        "--seed",
        "5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line, "serve printed nothing"
        info = json.loads(line)
        assert not info["url"].endswith(":0")
        credentials = DEFAULT_CREDENTIALS
        assert (info["username"], info["password"]) == (credentials.username, credentials.password)
        async with EnkashClient(info["url"], token=info["token"]) as client:
            found = await client.customers.search().collect()
        assert [c.customer_id for c in found] == [
            c["customerId"] for c in FakeEnkash(customers=7, seed=5).customers
        ]
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, errors.decode()
    assert info["url"] in errors.decode()
    assert no_traceback(errors.decode())


async def test_serve_prints_the_export_lines_that_connect_the_cli_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "enkash_async",
        "serve",
        "--port",
        "0",
        "--customers",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        await asyncio.wait_for(process.stdout.readline(), timeout=30)
        exports = {}
        while len(exports) < 5:
            line = (await asyncio.wait_for(process.stderr.readline(), timeout=30)).decode()
            assert line, "serve printed no export lines"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
        for name, value in exports.items():  # as the pasted lines would
            monkeypatch.setenv(name, value)

        assert await run("customers", "search", "--max-items", "1") == 0
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=30)
