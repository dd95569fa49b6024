"""Process mode (python -m enkash_async.testing) and serve()."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

import enkash_async.testing
from enkash_async.testing import FakeEnkash, serve

# The checkout root, so the child imports this enkash_async even when it is not installed.
_ROOT = Path(enkash_async.testing.__file__).resolve().parents[2]
_CHILD_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")]),
}


async def _search(http: aiohttp.ClientSession, url: str, token: str) -> dict:
    async with http.post(
        url + "/api/v0/customer/search",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_process_mode_prints_one_json_line_and_serves_until_signalled(
    signum: signal.Signals,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "enkash_async.testing",
        "--port",
        "0",
        "--customers",
        "10",
        "--seed",
        "4",
        "--latency-search",
        "0.001",
        "--max-in-flight",
        "50",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_CHILD_ENV,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line, "the server printed nothing"
        info = json.loads(line)
        assert set(info) == {"url", "client_id", "client_secret", "username", "password", "token"}

        async with aiohttp.ClientSession() as http:
            page = await _search(http, info["url"], info["token"])
            assert page["payload"]["recordsCount"] == 10
            assert page["payload"]["data"][0] == FakeEnkash(customers=10, seed=4).customers[0]
    finally:
        process.send_signal(signum)
        _, errors = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, errors.decode()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_sigterm_as_soon_as_the_server_is_ready_stops_it_cleanly() -> None:
    # Whoever reads the connection line may signal at once: the handlers are in place.
    code = (
        "import asyncio, os, signal\n"
        "from enkash_async.testing import serve\n"
        "asyncio.run(serve('127.0.0.1', 0, ready=lambda _: os.kill(os.getpid(), signal.SIGTERM)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_CHILD_ENV, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr


async def test_serve_calls_ready_once_listening_and_stops_when_cancelled() -> None:
    ready: asyncio.Queue[FakeEnkash] = asyncio.Queue()
    task = asyncio.create_task(serve("127.0.0.1", 0, customers=3, seed=1, ready=ready.put_nowait))
    server = await asyncio.wait_for(ready.get(), timeout=10)

    async with aiohttp.ClientSession() as http:
        page = await _search(http, server.url, server.token)
        assert page["payload"]["recordsCount"] == 3

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        with pytest.raises(aiohttp.ClientConnectionError):
            await _search(http, server.url, server.token)
