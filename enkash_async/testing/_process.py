"""The fake EnKash as a process of its own: :class:`FakeEnkashProcess`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from typing import IO, Any, Final

from enkash_async.auth import PasswordCredentials
from enkash_async.errors import EnkashError, UsageError

__all__ = ["FakeEnkashProcess", "FakeEnkashProcessError"]

# What the connection line of ``python -m enkash_async.testing`` holds.
_INFO_KEYS: Final = ("url", "client_id", "client_secret", "username", "password", "token")
# The connection line is a few hundred bytes; a longer one is not it.
_LINE_LIMIT: Final = 64 * 1024
# How much of the process's stderr an error quotes (its end: a traceback's last lines).
_STDERR_TAIL: Final = 2000
# The largest stats page read; the counters are well under a kilobyte.
_STATS_LIMIT: Final = 1024 * 1024


class FakeEnkashProcessError(EnkashError):
    """A :class:`FakeEnkashProcess` did not start (its process exited first, or printed no
    connection line in time), or its process did not answer :meth:`~FakeEnkashProcess.stats`.
    The message quotes the end of the process's stderr where that explains it."""


class FakeEnkashProcess:
    """``python -m enkash_async.testing`` in a process of its own, for a test or benchmark
    whose server must not share its event loop or CPU, or that starts other processes
    (a CLI, workers) against it::

        with FakeEnkashProcess("--customers", "1000", "--latency-create", "0.01") as fake:
            subprocess.run(["enkash-async", "customers", "search"], env=fake.environ())
            assert fake.stats()["requests"]["search"] == 1

    ``options`` are the command's options (``--customers``, ``--seed``, ``--latency-*``,
    ``--rate-limit``, ``--fault-rate``, ...); it listens on a free port of 127.0.0.1.
    Use it as a context manager (``with`` or ``async with``; the async form starts and
    stops in a thread, off the event loop), or call :meth:`start` and :meth:`stop`.

    :param ready_timeout: seconds :meth:`start` waits for the connection line (a server
        generating a million customers takes a while).
    :param stop_timeout: seconds :meth:`stop` waits after SIGTERM before SIGKILL.
    :param env: the process's environment (default: this process's).
    """

    def __init__(
        self,
        *options: str,
        ready_timeout: float = 60.0,
        stop_timeout: float = 15.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._command = [sys.executable, "-m", "enkash_async.testing", "--port", "0", *options]
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._env = dict(env) if env is not None else None
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._info: dict[str, str] | None = None

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeEnkashProcess:
        """Start the process and wait for its connection line; this runner, started.

        :raises FakeEnkashProcessError: the process exited before it was ready, or printed
            no connection line within ``ready_timeout`` (it is stopped then).
        :raises UsageError: this runner was started before.
        """
        if self._process is not None:
            raise UsageError("a FakeEnkashProcess starts once")
        # A file, not a pipe: a pipe nobody reads would stall a chatty server. It lives
        # until stop(), so no with-block.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self._env,
            text=True,
            errors="replace",
        )
        try:
            self._info = self._read_info(self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the process: SIGTERM, then SIGKILL if it has not exited within
        ``stop_timeout``; it is waited for, so no zombie is left. Stopping again, or a
        runner never started, does nothing."""
        process = self._process
        if process is None:
            return
        self._halt(process)
        if self._reader is not None:
            self._reader.join(self._stop_timeout)
        for stream in (process.stdout, self._stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> FakeEnkashProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeEnkashProcess:
        starting = asyncio.ensure_future(asyncio.to_thread(self.start))
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The start goes on in its thread: let it end, then stop what it started.
            await asyncio.gather(starting, return_exceptions=True)
            await asyncio.to_thread(self.stop)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    # ---- what it serves --------------------------------------------------------------

    @property
    def info(self) -> dict[str, str]:
        """The connection line: ``url``, ``client_id``, ``client_secret``, ``username``,
        ``password`` and a ready ``token`` (a copy).

        :raises UsageError: not started.
        """
        if self._info is None:
            raise UsageError("the FakeEnkashProcess has not started")
        return dict(self._info)

    @property
    def url(self) -> str:
        """The server's base URL, ``http://127.0.0.1:<port>``."""
        return self.info["url"]

    @property
    def token(self) -> str:
        """A bearer token the server issued at start (valid for its ``--token-ttl``)."""
        return self.info["token"]

    @property
    def credentials(self) -> PasswordCredentials:
        """The credentials the server accepts at ``POST /oauth/token``."""
        info = self.info
        return PasswordCredentials(
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            username=info["username"],
            password=info["password"],
        )

    @property
    def pid(self) -> int | None:
        """The process id, or None before :meth:`start`."""
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The process's exit status once it has exited (and been waited for), else None."""
        return None if self._process is None else self._process.poll()

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for a process that talks to this server: ``base`` (default
        ``os.environ``) without its ``ENKASH_*`` variables, plus ``ENKASH_BASE_URL`` and
        ``ENKASH_TOKEN`` (the ready token, so that process needs no login)."""
        environ = {
            key: value
            for key, value in (os.environ if base is None else base).items()
            if not key.startswith("ENKASH")
        }
        environ.update(ENKASH_BASE_URL=self.url, ENKASH_TOKEN=self.token)
        return environ

    def stats(self, timeout: float = 10.0) -> dict[str, Any]:
        """The server's counters from ``GET /_fake/stats`` (blocks for that one local
        request): :meth:`ServerStats.as_json <enkash_async.testing.ServerStats.as_json>`
        plus ``stored``, ``unique_refs`` and ``duplicate_refs`` of the stored customers.

        :raises FakeEnkashProcessError: no JSON object came back within ``timeout`` seconds.
        """
        # Imported here: only this method needs it, and it is slow to import.
        import urllib.request

        url = self.url + "/_fake/stats"
        # The server is local: a proxy from the environment must not see the request.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=timeout) as reply:
                body = reply.read(_STATS_LIMIT + 1)
        except OSError as exc:
            raise FakeEnkashProcessError(f"GET {url} failed: {exc}") from exc
        try:
            stats = json.loads(body) if len(body) <= _STATS_LIMIT else None
        except ValueError as exc:
            raise FakeEnkashProcessError(f"GET {url} did not return JSON") from exc
        if not isinstance(stats, dict):
            raise FakeEnkashProcessError(f"GET {url} did not return a JSON object")
        return stats

    def __repr__(self) -> str:
        if self._process is None:
            state = "not started"
        elif self._process.poll() is not None:
            state = f"exited {self._process.returncode}"
        else:
            state = f"pid {self._process.pid}" + (f" at {self.url}" if self._info else "")
        return f"<FakeEnkashProcess {state}>"

    # ---- inside ----------------------------------------------------------------------

    def _read_info(self, process: subprocess.Popen[str]) -> dict[str, str]:
        line = self._ready_line(process)
        if line is None:
            self._halt(process)
            raise FakeEnkashProcessError(
                f"the fake EnKash printed no connection line within {self._ready_timeout:g}s"
                f" and was stopped; {self._stderr_tail()}"
            )
        if not line:
            try:  # stdout closed: the process is exiting; its own status says why
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                self._halt(process)
            raise FakeEnkashProcessError(
                f"the fake EnKash exited with status {process.returncode} before it was"
                f" ready; {self._stderr_tail()}"
            )
        try:
            info = json.loads(line)
        except ValueError:
            info = None
        # Never quote the line: it holds the credentials and token.
        if not (isinstance(info, dict) and all(isinstance(info.get(k), str) for k in _INFO_KEYS)):
            self._halt(process)
            raise FakeEnkashProcessError(
                f"the fake EnKash's first line is not its connection info; {self._stderr_tail()}"
            )
        return {key: info[key] for key in _INFO_KEYS}

    def _ready_line(self, process: subprocess.Popen[str]) -> str | None:
        """The first line of stdout, "" if it closed first, None if none came in time."""
        stdout = process.stdout
        assert stdout is not None  # stdout=PIPE
        lines: list[str] = []

        def read() -> None:
            try:
                lines.append(stdout.readline(_LINE_LIMIT))
            except (OSError, ValueError):  # closed under it by stop()
                lines.append("")

        # A thread bounds the wait on every platform (select() takes no pipe on Windows).
        self._reader = threading.Thread(target=read, name="fake-enkash-ready", daemon=True)
        self._reader.start()
        self._reader.join(self._ready_timeout)
        return lines[0] if lines else None

    def _halt(self, process: subprocess.Popen[str]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _stderr_tail(self) -> str:
        stream = self._stderr
        if stream is None or stream.closed:
            return "its stderr is gone"
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - _STDERR_TAIL))
        text = stream.read().decode(errors="replace").strip()
        if not text:
            return "its stderr is empty"
        return f"its stderr ends:\n{'…' if size > _STDERR_TAIL else ''}{text}"
