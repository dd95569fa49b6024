"""Sync sources: CSV and JSONL customer files read lazily, one :class:`SourceRow` per record.

A file holds EnKash's wire format, as ``customers search --format csv|jsonl`` writes it:
wire names (``legalName``), and in CSV dotted paths into lists
(``customerKeyContacts.0.mobile``). Fields EnKash assigns itself (``customerId``,
timestamps, ...) are ignored and counted, so an export imports back unchanged. Every
row carries its line in the file; a row that cannot be read (bad CSV quoting, a short
or long row, bad JSON, a line too long, too deep or with a number too long) is an invalid
row with that reason, never the end of the file and never merged into the next row. Only
regular files are read (a FIFO or a device is refused before reading).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import stat
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import attrs

from enkash_async import (
    Customer,
    CustomerCreate,
    CustomerUpdate,
    EnkashError,
    KeyContact,
    KeyContactCreate,
    Reminder,
    ReminderCreate,
    ValidationError,
    _csv,
)
from enkash_async._csv import MAX_COLUMN_PARTS as MAX_COLUMN_PARTS  # its old home
from enkash_async._csv import MAX_NUMBER_DIGITS, flatten
from enkash_async._unset import UNSET, UnsetType
from enkash_async._wire import camel_case, wire_name
from enkash_async.errors import excerpt

__all__ = [
    "READ_ONLY_FIELDS",
    "SYNC_ONLY_FIELDS",
    "SourceError",
    "SourceRow",
    "check_source",
    "count_rows",
    "flatten",
    "iter_rows",
    "load_json_document",
    "read_csv",
    "read_file",
    "read_jsonl",
    "wire_path",
]

#: Characters a line (or a CSV record spanning lines) may hold; a longer one is that
#: row's problem, read past in pieces, never held whole (a customer is a few KB).
MAX_LINE_CHARS = 1 << 20
#: Bytes one JSON document (``customers create --json``) may have.
MAX_DOCUMENT_BYTES = 1 << 20
SUFFIXES = (".csv", ".jsonl", ".ndjson")


_MODELS = (
    CustomerCreate,
    CustomerUpdate,
    KeyContactCreate,
    ReminderCreate,
    Customer,
    KeyContact,
    Reminder,
)
# Python attribute name -> wire name, from the models' own field declarations.
_WIRE_NAMES = {f.name: wire_name(f) for model in _MODELS for f in attrs.fields(model)}


def _wire_names(model: type[Any]) -> frozenset[str]:
    return frozenset(wire_name(field) for field in attrs.fields(model))


# The models a CSV header names fields of: what a row makes, and what an export holds.
_CSV_MODELS = (CustomerCreate, Customer)


#: What a client writes besides a create's fields: ``assignedAgent`` and ``branchCodes``
#: by PATCH, ``active`` by activate/deactivate. A sync compares and writes them.
SYNC_ONLY_FIELDS = frozenset(
    {"active"} | (_wire_names(CustomerUpdate) - _wire_names(CustomerCreate))
)

# What EnKash assigns (in a reply, never written by a client): ignored on import, counted.
READ_ONLY_FIELDS: Mapping[str, frozenset[str]] = {
    "": (_wire_names(Customer) - _wire_names(CustomerCreate) - SYNC_ONLY_FIELDS),
    "customerKeyContacts": _wire_names(KeyContact) - _wire_names(KeyContactCreate),
    "customerReminders": _wire_names(Reminder) - _wire_names(ReminderCreate),
}


class SourceError(EnkashError):
    """A source that cannot be read at all (missing, not a .csv/.jsonl file, no header)."""


@attrs.frozen
class SourceRow:
    """One record of a source: its ``line`` in the file (or 1-based position in an
    iterable), the ``customer`` it makes, or every reason (``problems``) it is invalid.

    ``ignored`` counts the read-only fields EnKash assigns that the row carried, and
    ``ignored_names`` names them (``customerKeyContacts.0.createdOn``); ``ref`` is the
    ``uniqueRefNo`` text the row holds, kept even when the row is invalid (so a rejection
    can name it). ``active``, ``assigned_agent`` and ``branch_codes`` are what the row
    says of the fields a create cannot set: :data:`UNSET` (or ``None`` for ``active``)
    when it says nothing, ``None`` to clear.
    """

    line: int
    customer: CustomerCreate | None
    problems: tuple[str, ...] = ()
    ignored: int = 0
    ref: str | None = attrs.field(default=None)
    active: bool | None = None
    assigned_agent: str | UnsetType | None = UNSET
    branch_codes: tuple[str, ...] | UnsetType | None = UNSET
    ignored_names: tuple[str, ...] = ()
    #: A digest of the record as read, when the reader made one (see ``row_fingerprint``).
    fingerprint: str | None = None
    #: A row read with ``lazy=True`` is not built until needed: this builds it.
    pending: Callable[[], SourceRow] | None = attrs.field(
        default=None, eq=False, repr=False, kw_only=True
    )

    def built(self) -> SourceRow:
        """This row with its customer built (itself when it was built already)."""
        return self if self.pending is None else self.pending()

    def __attrs_post_init__(self) -> None:
        if self.ref is None and self.customer is not None:
            object.__setattr__(self, "ref", self.customer.unique_ref_no)


def check_source(path: str) -> None:
    """Raise ``SourceError`` or ``OSError`` now if ``path`` cannot be read as a source
    (not a ``.csv``/``.jsonl`` name, not a regular file, unreadable)."""
    if Path(path).suffix.lower() not in SUFFIXES:
        raise SourceError(f"{path}: use a .csv or .jsonl file")
    with _open_regular(path):
        pass


def _open_regular(path: str | Path) -> IO[bytes]:
    """``path`` opened for reading in binary, if it is a regular file; a FIFO, a device or
    a directory is a ``SourceError`` (its open never blocks, nothing is read)."""
    # O_NONBLOCK: opening a FIFO with no writer must not hang; checked on the open
    # descriptor, so the path cannot be swapped between the check and the read.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SourceError(f"{path}: is not a regular file ({_kind(mode)}); give a file path")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def read_file(path: str, *, lazy: bool = False) -> Iterator[SourceRow]:
    """The rows of a ``.csv`` or ``.jsonl``/``.ndjson`` file, read lazily.

    With ``lazy``, a row that can be read is not built into a model: it carries its ref,
    a ``fingerprint`` of its text and ``pending``, which builds it (:meth:`SourceRow.built`),
    so a sync can settle a row it has written before without building it.

    Raises ``SourceError`` or ``OSError`` at once (before the first row) when the file
    cannot be read at all.
    """
    check_source(path)
    return _read(Path(path), lazy)


def _read(path: Path, lazy: bool) -> Iterator[SourceRow]:
    # surrogateescape keeps undecodable bytes so the row holding them can be named.
    with io.TextIOWrapper(
        _open_regular(path), encoding="utf-8-sig", errors="surrogateescape", newline=""
    ) as stream:
        if path.suffix.lower() == ".csv":
            yield from read_csv(stream, lazy=lazy)
        else:
            yield from read_jsonl(stream, lazy=lazy)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _later(line: int, ref: Any, fingerprint: str, build: Callable[[], SourceRow]) -> SourceRow:
    """The row of ``line`` with its ref and fingerprint, its building left to
    :meth:`SourceRow.built`."""

    def pending() -> SourceRow:
        return attrs.evolve(build(), fingerprint=fingerprint)

    ref = excerpt(ref, 100) if isinstance(ref, str) and ref.strip() else None
    return SourceRow(line, None, (), 0, ref, fingerprint=fingerprint, pending=pending)


def count_rows(path: str) -> int:
    """How many rows ``path`` holds, counted cheaply (lines, less the CSV header and
    blank lines); an estimate when CSV cells hold line breaks. Reads in pieces, so a
    line of any length costs little memory; raises ``SourceError`` for a non-file."""
    lines = blank = 0
    started = filled = False  # the line being read has bytes / non-blank bytes
    with _open_regular(path) as stream:
        while chunk := stream.read(1 << 20):
            *ended, rest = chunk.split(b"\n")
            for piece in ended:
                lines += 1
                blank += not (filled or piece.strip())
                filled = False
            started = bool(rest)
            filled = filled or bool(rest.strip())
    if started or filled:
        lines += 1
        blank += not filled
    header = 1 if Path(path).suffix.lower() == ".csv" and lines else 0
    return max(0, lines - blank - header)


_TOO_LONG = f"is longer than {MAX_LINE_CHARS:,} characters, the limit for one line"


def _lines(stream: IO[str]) -> Iterator[tuple[int, str | None]]:
    """``(number, line)`` for each line of ``stream``; ``line`` is None for a line over
    :data:`MAX_LINE_CHARS`, which is read past in pieces, never held whole."""
    number = 0
    while line := stream.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) <= MAX_LINE_CHARS or line.endswith(("\n", "\r")):
            yield number, line
            continue
        while (more := stream.readline(MAX_LINE_CHARS)) and not more.endswith(("\n", "\r")):
            pass
        yield number, None


def load_json_document(source: str) -> Any:
    """The JSON document in the file ``source`` (``-``: stdin), at most
    :data:`MAX_DOCUMENT_BYTES`. Raises ``SourceError`` naming what is wrong (not a
    regular file, too large, not UTF-8, not JSON, too deep) and ``OSError``."""
    name = "stdin" if source == "-" else source
    if source == "-":
        binary = getattr(sys.stdin, "buffer", None)  # a replaced stdin may be text only
        if binary is not None:
            raw = binary.read(MAX_DOCUMENT_BYTES + 1)
        else:
            raw = sys.stdin.read(MAX_DOCUMENT_BYTES + 1).encode("utf-8", "surrogateescape")
    else:
        with _open_regular(source) as stream:
            raw = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise SourceError(f"{name}: is larger than {MAX_DOCUMENT_BYTES:,} bytes, the limit")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SourceError(f"{name}: is not UTF-8 text") from None
    data, problem = _parse_json(text)
    if problem is not None:
        raise SourceError(f"{name}: {problem}")
    return data


async def iter_rows(
    items: Iterable[CustomerCreate | SourceRow] | AsyncIterable[CustomerCreate | SourceRow],
) -> AsyncIterator[SourceRow]:
    """Rows of any iterable or async iterable of ``CustomerCreate`` (numbered from 1 by
    position) or ready ``SourceRow``s."""
    if isinstance(items, AsyncIterable):
        position = 0
        async for item in items:
            position += 1
            yield _as_row(position, item)
    else:
        for position, item in enumerate(items, start=1):
            yield _as_row(position, item)


def _as_row(position: int, item: object) -> SourceRow:
    if isinstance(item, SourceRow):
        return item
    if isinstance(item, CustomerCreate):
        return SourceRow(position, item)
    return SourceRow(position, None, (f"must be a CustomerCreate, got {type(item).__name__}",))


# --------------------------------------------------------------------------- JSONL


def read_jsonl(stream: IO[str], *, lazy: bool = False) -> Iterator[SourceRow]:
    """One row per non-blank line of JSON objects in EnKash's wire format (``lazy``: see
    :func:`read_file`)."""
    for number, line in _lines(stream):
        if line is None:
            yield SourceRow(number, None, (_TOO_LONG,))
            continue
        if not line.strip():
            continue
        if not _is_text(line):
            yield SourceRow(number, None, (_NOT_UTF8,))
            continue
        if lazy:  # not even parsed: the ref as the text shows it, the rest when built
            fingerprint = _digest(line.rstrip("\r\n"))
            build = functools.partial(_jsonl_row, number, line)
            yield _later(number, _ref_in(line), fingerprint, build)
            continue
        yield _jsonl_row(number, line)


def _jsonl_row(number: int, line: str) -> SourceRow:
    data, problem = _parse_json(line)
    if problem is not None:
        return SourceRow(number, None, (problem,), ref=_ref_in(line))
    if not isinstance(data, dict):
        problem = f"must be a JSON object, got {type(data).__name__}"
        return SourceRow(number, None, (problem,))
    return _build(number, data, dotted=False)


_TOO_DEEP = "is nested too deeply to read"
_REF_TEXT = re.compile(r'"uniqueRefNo"\s*:\s*"([^"\\]{1,100})"')


def _ref_in(line: str) -> str | None:
    """The uniqueRefNo a line that is not JSON seems to hold (only if it names one), so
    its rejection can say which customer it was."""
    found = _REF_TEXT.findall(line)
    return found[0] if len(set(found)) == 1 else None


def _whole_number(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _NumberTooLong
    return int(text)


class _NumberTooLong(ValueError):
    pass


# One decoder: json.loads with parse_int builds a new one per call.
_DECODER = json.JSONDecoder(parse_int=_whole_number)


def _parse_json(text: str) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, problem)`` for text that is not JSON, is nested too
    deeply, or holds a number too long to read."""
    try:
        return _DECODER.decode(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, _TOO_DEEP
    except ValueError:  # ours, or the interpreter's own digit limit
        return None, f"holds a number of more than {MAX_NUMBER_DIGITS} digits"


# --------------------------------------------------------------------------- CSV


def read_csv(stream: IO[str], *, lazy: bool = False) -> Iterator[SourceRow]:
    """One row per CSV record under a header of wire names and dotted paths (the format
    is :mod:`enkash_async._csv`'s; ``lazy``: see :func:`read_file`)."""
    header: list[str] | None = None
    ref_at: int | None = None
    header_digest = ""
    columns: frozenset[str] = frozenset()
    for line, cells in _csv.records(_lines(stream), max_chars=MAX_LINE_CHARS, too_long=_TOO_LONG):
        if isinstance(cells, str):
            if header is None:
                raise SourceError(f"line {line}: the header {cells}")
            yield SourceRow(line, None, (cells,))
            continue
        if header is None:
            try:
                header = _csv.read_header(cells, _CSV_MODELS)
            except _csv.HeaderError as exc:
                raise SourceError(f"line {line}: the header {exc}") from None
            columns = frozenset(name.split(".", 1)[0] for name in header)
            ref_at = header.index("uniqueRefNo") if "uniqueRefNo" in header else None
            header_digest = _digest("\x1f".join(header))
            continue
        problem = _csv.row_problem(header, cells)
        if problem is not None:
            yield SourceRow(line, None, (problem,))
            continue
        if not all(_is_text(cell) for cell in cells):
            yield SourceRow(line, None, (_NOT_UTF8,))
            continue
        if lazy:
            ref = _csv.decode_text(cells[ref_at]) if ref_at is not None else None
            fingerprint = _digest(header_digest + "\x1f" + "\x1f".join(cells))
            build = functools.partial(_csv_row, line, header, cells, columns)
            yield _later(line, ref, fingerprint, build)
            continue
        yield _csv_row(line, header, cells, columns)


def _csv_row(line: int, header: list[str], cells: list[str], columns: frozenset[str]) -> SourceRow:
    data, bad_cells = _csv.read_cells(header, cells, CustomerCreate)
    return _build(line, data, dotted=True, bad_cells=bad_cells, columns=columns)


def _is_text(text: str) -> bool:
    """False if ``text`` holds bytes that were not UTF-8 (kept as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NOT_UTF8 = "is not UTF-8 text"


# --------------------------------------------------------------------------- building


def _build(
    line: int,
    data: dict[str, Any],
    *,
    dotted: bool,
    bad_cells: Mapping[str, str] | None = None,
    columns: frozenset[str] = frozenset(),
) -> SourceRow:
    """The row ``data`` makes; every problem is reported, those of cells that could not
    be read (``bad_cells``) first, without repeating them as missing fields. ``columns``
    are a CSV header's top-level names: a PATCH-only column there with an empty cell
    clears the field (absent from a file, it is left as EnKash has it)."""
    bad_cells = bad_cells or {}
    names = _drop_read_only(data)
    ignored = len(names)
    problems = list(bad_cells.values())
    ref = data.get("uniqueRefNo")
    ref = excerpt(ref, 100) if isinstance(ref, str) and ref.strip() else None
    extras = _sync_only(data, columns, problems, dotted=dotted, bad_cells=bad_cells)
    try:
        customer = CustomerCreate.from_dict(data)
    except RecursionError:  # a value nested deeper than the checks can walk
        return SourceRow(line, None, (_TOO_DEEP,), ignored, ref, ignored_names=names)
    except ValidationError as exc:
        for error in exc.errors:
            path = wire_path(error.path, dotted=dotted)
            if path not in bad_cells:
                problems.append(f"{path}: {error.message}")
        return SourceRow(line, None, tuple(problems), ignored, ref, ignored_names=names)
    if problems:  # a bad cell of an optional field
        return SourceRow(line, None, tuple(problems), ignored, ref, ignored_names=names)
    return SourceRow(line, customer, (), ignored, ignored_names=names, **extras)


def _sync_only(
    data: dict[str, Any],
    columns: frozenset[str],
    problems: list[str],
    *,
    dotted: bool,
    bad_cells: Mapping[str, str],
) -> dict[str, Any]:
    """Take ``active``, ``assignedAgent`` and ``branchCodes`` out of ``data``, checked by
    the PATCH's own rules; the SourceRow fields they make (problems go to ``problems``)."""
    extras: dict[str, Any] = {}
    active = data.pop("active", None)
    if isinstance(active, str):  # a CSV cell: read by the CSV format's rule for flags
        try:
            active = _csv.decode_flag("active", active)
        except ValueError as exc:
            problems.append(str(exc))
            active = None
    if isinstance(active, bool):
        extras["active"] = active
    elif active is not None and "active" not in bad_cells:
        problems.append(f"active: must be true or false, got {excerpt(str(active), 40)!r}")
    given: dict[str, Any] = {
        name: data.pop(name) for name in ("assignedAgent", "branchCodes") if name in data
    }
    for name in ("assignedAgent", "branchCodes"):
        if name in columns:  # the column is there, its cells empty: clear it
            given.setdefault(name, None)
    if not given:
        return extras
    try:
        update = CustomerUpdate.from_dict(given)
    except ValidationError as exc:
        for error in exc.errors:
            path = wire_path(error.path, dotted=dotted)
            if not any(cell == path or cell.startswith(path + ".") for cell in bad_cells):
                problems.append(f"{path}: {error.message}")
        return extras
    extras["assigned_agent"] = update.assigned_agent
    extras["branch_codes"] = update.branch_codes
    return extras


def _drop_read_only(data: dict[str, Any]) -> tuple[str, ...]:
    """Remove the fields EnKash assigns from ``data``; returns their dotted names."""
    ignored = [name for name in READ_ONLY_FIELDS[""] & data.keys()]
    for name in ignored:
        del data[name]
    for key in ("customerKeyContacts", "customerReminders"):
        items = data.get(key)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            if key == "customerKeyContacts" and "legalName" not in item and "customerName" in item:
                # A reply names the contact's legal name customerName.
                item["legalName"] = item.pop("customerName")
            for name in READ_ONLY_FIELDS[key] & item.keys():
                del item[name]
                ignored.append(f"{key}.{index}.{name}")
    return tuple(ignored)


_SEGMENT = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def wire_path(path: str, *, dotted: bool) -> str:
    """A problem's path in the caller's names: wire names, and ``.0.`` list steps for a
    CSV's dotted columns (``customerKeyContacts.0.mobile``) or ``[0]`` for JSON."""
    out = ""
    for index, name in _SEGMENT.findall(path):
        if index:
            out += f".{index}" if dotted else f"[{index}]"
        else:
            out += ("." if out else "") + _WIRE_NAMES.get(name, camel_case(name))
    return out or path
