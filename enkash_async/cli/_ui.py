"""Terminal output for the CLI: rich when installed (the ``cli`` extra), plain text otherwise."""

from __future__ import annotations

import json
import re
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
    from rich.text import Text
except ImportError:  # pragma: no cover - exercised only without the cli extra
    Console = None  # type: ignore[assignment,misc]

__all__ = ["Bar", "CommandError", "err", "json_text", "progress", "table", "terminal_text"]

# What can move the cursor, recolour, retitle, ring or reorder what a terminal shows: C0
# controls, DEL, C1 controls (CSI is one byte there), and Unicode's invisible format and
# bidi controls (a name can otherwise read right to left from its middle).
_FORMAT = "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}]")
_CONTROL_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_FORMAT}]")
# What json.dumps(ensure_ascii=False) leaves raw (it escapes C0 itself).
_JSON_RAW = re.compile(f"[\x7f-\x9f{_FORMAT}]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def terminal_text(text: str, *, lines: bool = False) -> str:
    """``text`` (from EnKash, Redis or a file) safe to show on a terminal: every control
    character shown escaped as Python writes it (``\\x1b``, ``\\u202e``), a newline too
    unless ``lines``, so text cannot act on the terminal or forge a line of output."""
    return (_CONTROL_BUT_NEWLINE if lines else _CONTROL).sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def json_text(value: Any, *, indent: int | None = None) -> str:
    """``value`` as JSON with no raw control character (JSON escapes for those
    ``json.dumps`` leaves as they are): the same value when read, safe on a terminal."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _JSON_RAW.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class CommandError(EnkashError):
    """A command cannot go on (``main`` prints it): ``message`` says why, ``exit_code``
    is 2 for bad input or usage, 1 for a failure the message explains."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def err(message: str) -> None:
    """A message for the person at the terminal (stderr, so stdout stays data); control
    characters escaped, its lines kept (text from a reply in it: :func:`terminal_text`)."""
    print(terminal_text(message, lines=True), file=sys.stderr, flush=True)


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
        # Text, not str: rich would read "[bold]" in a customer's name as markup.
        rendered = Table(title=Text(terminal_text(title)))
        for header in headers:
            rendered.add_column(Text(terminal_text(str(header))))
        for row in rows:
            rendered.add_row(*(Text(_cell(cell)) for cell in row))
        Console(file=out, width=max(60, min(160, _width(headers, rows)))).print(rendered)
        return
    widths = [max(len(str(h)), *(len(_cell(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print(terminal_text(title), file=out)
    print(
        "  ".join(terminal_text(str(h)).ljust(w) for h, w in zip(headers, widths, strict=True)),
        file=out,
    )
    for row in rows:
        print("  ".join(_cell(c).ljust(w) for c, w in zip(row, widths, strict=True)), file=out)


def _cell(value: Any) -> str:
    """A table cell: empty for a missing value (never ``None``), ``true``/``false``,
    control characters escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return terminal_text(str(value))


def _width(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    cells = [list(map(str, headers)), *[list(map(_cell, r)) for r in rows]]
    return sum(max(len(row[i]) for row in cells) + 3 for i in range(len(headers))) + 4
