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
import sys
from collections.abc import Callable, Sequence
from typing import Any

from enkash_async import EnkashError, ValidationError, __version__
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.handler(args))
        return code
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
