"""Terminal output for the CLI: rich when installed (the ``cli`` extra), plain text otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from enkash_async.errors import EnkashError

try:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table
except ImportError:  # pragma: no cover - exercised only without the cli extra
    Console = None  # type: ignore[assignment,misc]

__all__ = ["Bar", "CommandError", "err", "progress", "table"]


class CommandError(EnkashError):
    """A command cannot go on (``main`` prints it): ``message`` says why, ``exit_code``
    is 2 for bad input or usage, 1 for a failure the message explains."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def err(message: str) -> None:
    """A message for the person at the terminal (stderr, so stdout stays data)."""
    print(message, file=sys.stderr, flush=True)


class Bar:
    """One progress bar: ``advance(n)`` and ``total`` once it is known."""

    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def set_total(self, total: int | None) -> None:
        if self._progress is not None and total is not None:
            self._progress.update(self._task, total=total)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Bar]:
    """A live progress bar on stderr (nothing when rich is missing or stderr is no terminal)."""
    if Console is None or not sys.stderr.isatty():
        yield Bar(None, None)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as live:
        yield Bar(live, live.add_task(description, total=total))


def table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], stream: TextIO | None = None
) -> None:
    """Print a table (rich's when available) to ``stream`` (stdout by default)."""
    out = stream or sys.stdout
    if Console is not None:
        rendered = Table(title=title)
        for header in headers:
            rendered.add_column(header)
        for row in rows:
            rendered.add_row(*(_cell(cell) for cell in row))
        Console(file=out, width=max(60, min(160, _width(headers, rows)))).print(rendered)
        return
    widths = [max(len(str(h)), *(len(_cell(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print(title, file=out)
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)), file=out)
    for row in rows:
        print("  ".join(_cell(c).ljust(w) for c, w in zip(row, widths, strict=True)), file=out)


def _cell(value: Any) -> str:
    """A table cell: empty for a missing value (never ``None``), ``true``/``false``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _width(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    cells = [list(map(str, headers)), *[list(map(_cell, r)) for r in rows]]
    return sum(max(len(row[i]) for row in cells) + 3 for i in range(len(headers))) + 4
