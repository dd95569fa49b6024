"""``enkash-async``: the command line (``demo``, ``serve``, ``customers ...``, ``sync``).

Each command module has a ``register(commands)`` function that adds its subcommands to
the top-level subparsers and sets ``handler`` (an ``async def (args) -> int``) with
``set_defaults``; :data:`REGISTRARS` lists them, and :func:`main` runs the handler the
arguments chose. Configuration comes from flags, then the ``ENKASH_*`` variables;
``--fake`` runs a command against an embedded fake EnKash. Secrets are read from the
environment only and never echoed. Exit codes: 0 success, 1 a failure the output
explains, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from types import FrameType
from typing import Any

from enkash_async import EnkashError, ValidationError, __version__
from enkash_async._log import configure as configure_logging
from enkash_async.cli import _commands, _sync
from enkash_async.cli._ui import CommandError, err, terminal_text
from enkash_async.sync import SourceError

__all__ = ["REGISTRARS", "main"]

#: The command modules' ``register`` functions, in the order their commands are listed.
#: A new command module adds its ``register`` here (one line).
REGISTRARS: tuple[Callable[[Any], None], ...] = (_commands.register, _sync.register)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the descriptions' line breaks."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enkash-async",
        formatter_class=_Formatter,
        description="EnKash's Customer API from the command line.\n\n"
        "EnKash is reached with ENKASH_BASE_URL and ENKASH_TOKEN, or ENKASH_CLIENT_ID,\n"
        "ENKASH_CLIENT_SECRET, ENKASH_USERNAME and ENKASH_PASSWORD. To try it locally:\n"
        "  enkash-async serve --port 8080      # prints the export lines to paste\n"
        "or add --fake to any customers command.",
    )
    parser.add_argument("--version", action="version", version=f"enkash-async {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr: -v a line per call that needed retries or reconciliation, -vv "
        "also a line per HTTP request (as ENKASH_LOG=info|debug; never a secret); before "
        "the command: enkash-async -vv customers import FILE",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.verbose:
        configure_logging("info" if args.verbose == 1 else "debug")
    try:
        return _run(args.handler(args))
    except CommandError as exc:
        err(f"error: {exc.message}")
        return exc.exit_code
    except ValidationError as exc:
        problems = "\n".join(f"  {terminal_text(str(e))}" for e in exc.errors)
        err(f"error: {exc.model or 'input'} is invalid:\n{problems}")
        return 2
    except SourceError as exc:
        err(f"error: {terminal_text(str(exc))}")
        return 2
    except EnkashError as exc:  # its message may quote a reply: one line, escaped
        err(f"error: {terminal_text(str(exc))}")
        return 1
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep the interpreter's
        # final flush of stdout from failing again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it
    except UnicodeDecodeError as exc:
        err(f"error: the input is not UTF-8 text ({exc.reason} at byte {exc.start})")
        return 2
    except (OSError, json.JSONDecodeError) as exc:
        err(f"error: {terminal_text(str(exc))}")
        return 2
    except KeyboardInterrupt:
        err("interrupted")
        return 130


def _run(command: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(command)`` where Ctrl-C cancels the command's task, which then says
    what was done: Python 3.11's ``asyncio.run`` does so; 3.10's raises KeyboardInterrupt
    wherever the loop is, and its shutdown prints the traceback of the task it cancels."""
    if sys.version_info >= (3, 11):
        return asyncio.run(command)
    return _run_cancelled_by_sigint(command)  # pragma: no cover - Python 3.10


def _run_cancelled_by_sigint(command: Coroutine[Any, Any, int]) -> int:
    """What Python 3.11's ``asyncio.Runner.run`` does with SIGINT, for 3.10: the first one
    cancels the task (a second one, or one after it ended, is a KeyboardInterrupt)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    task = loop.create_task(command)
    interrupts = 0

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1 and not task.done():
            task.cancel()
            loop.call_soon_threadsafe(lambda: None)  # wake the loop from its select
            return
        raise KeyboardInterrupt

    # As asyncio does: only from the main thread, and only over Python's default handler.
    ours = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if ours:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if interrupts:
                raise KeyboardInterrupt from None
            raise
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            _cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and wait for the tasks still running, as ``asyncio.run`` does at its end."""
    remaining = asyncio.all_tasks(loop)
    for task in remaining:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*remaining, return_exceptions=True))
    for task in remaining:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
