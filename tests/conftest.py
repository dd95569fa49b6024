"""Shared test setup."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _support import FakeTime

if TYPE_CHECKING:
    from enkash_async.testing import FakeEnkash


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Run on every core unless told otherwise: `-n N` chooses, `-n 0` or `-p no:xdist` is serial.

    Here rather than `-n auto` in addopts, which `-p no:xdist` would refuse as an unknown flag.
    """
    if not config.pluginmanager.hasplugin("xdist") or "PYTEST_XDIST_WORKER" in os.environ:
        return
    chosen = config.option.numprocesses is not None or config.option.dist != "no"
    if not chosen and not config.option.collectonly and not config.option.usepdb:
        config.option.numprocesses = "auto"
        # An idle worker takes tests queued on a busy one, so the run does not end on one
        # worker's queue behind a long test.
        config.option.dist = "worksteal"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `slow` tests first (stable: otherwise in file order), so the workers start the
    long ones together rather than one worker ending the run alone on them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Whatever the event loop reports (never-retrieved exceptions, destroyed tasks)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)


@pytest.fixture
def fake() -> FakeTime:
    """A fake clock and sleep for retry policies: nothing waits, time still passes."""
    return FakeTime()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate and key for localhost and 127.0.0.1 (skips without openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *(
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
            ),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    yield cert, key


# --- the command line, run in process (tests/test_cli.py, tests/sync/)


@pytest.fixture
def no_enkash_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The test runs without the caller's ENKASH_* configuration or CLI state."""
    for name in list(os.environ):
        if name.startswith("ENKASH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[FakeEnkash]]]:
    """Start a FakeEnkash with the given options; it is closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start_server(**options: Any) -> FakeEnkash:
            from enkash_async.testing import FakeEnkash  # the server loads only when asked for

            return await stack.enter_async_context(FakeEnkash(**options))

        yield start_server
