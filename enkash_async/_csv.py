"""The CSV format of customer files: what ``customers search --format csv`` writes and
what ``customers import``, ``sync`` and :func:`enkash_async.sync.read_csv` read.

The one place for the dialect, the columns and the cells (docs/sync.md, "Import file
format", says the same for users):

- **Dialect**: RFC 4180 as Python's ``excel`` dialect (comma, ``"`` quotes doubled, CRLF
  written, a cell may hold line breaks inside quotes), UTF-8, a BOM read and ignored;
  bad quoting is an error, not a guess.
- **Columns**: EnKash's wire names (``legalName``); lists as dotted paths with a 0-based
  index (``customerKeyContacts.0.mobile``, ``branchCodes.1``). Reading is liberal: a
  header may name a field by its Python attribute name (``legal_name``).
  A header naming one field twice (``uniqueRefNo`` and ``unique_ref_no``, a name
  repeated) is refused, not guessed at.
- **Cells**: text; an empty cell is an absent field; booleans ``true``/``false`` (read
  also ``yes``/``no``, ``1``/``0``); whole numbers as digits.
- **Formulas** (OWASP CSV injection): a written cell a spreadsheet would run (one that
  starts with ``= + - @``, TAB or CR and is not a number) gets a ``'`` in front, and so
  does one that already starts with ``'`` before such a character; reading takes exactly
  that one ``'`` off again, so an export imports back to the same values.

Works on any attrs model through its fields and never imports :mod:`enkash_async.models`
(which re-exports :func:`csv_cell_types`).
"""

from __future__ import annotations

import csv
import itertools
import re
import types
import typing
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Final

import attrs

from enkash_async._wire import wire_name
from enkash_async.errors import excerpt

__all__ = [
    "MAX_COLUMN_PARTS",
    "MAX_NUMBER_DIGITS",
    "Dialect",
    "HeaderError",
    "csv_cell_types",
    "decode_flag",
    "decode_text",
    "encode_cell",
    "encode_text",
    "export_columns",
    "flatten",
    "read_cells",
    "read_header",
    "records",
    "row_problem",
    "writer",
]

#: Dotted parts a column may have (``customerKeyContacts.0.mobile`` has 3).
MAX_COLUMN_PARTS: Final = 8
#: Digits a whole number may have in a file, CSV cell or JSON (no EnKash field needs 20).
MAX_NUMBER_DIGITS: Final = 100
# A dotted column's list index above this is a typo, not a list to build.
_MAX_INDEX: Final = 999
# A quoted cell running over more lines than this is an unclosed quote, not a cell.
_MAX_RECORD_LINES: Final = 50


_QUOTE: Final = '"'


class Dialect(csv.excel):
    """RFC 4180 as Python's ``excel`` dialect; strict, so bad quoting is an error."""

    quotechar = _QUOTE
    strict = True


class HeaderError(ValueError):
    """A header that cannot be read unambiguously; ``columns`` are the columns at fault."""

    def __init__(self, message: str, columns: Sequence[str]) -> None:
        super().__init__(message)
        self.columns = tuple(columns)


# --------------------------------------------------------------------------- formulas

# OWASP's list of first characters a spreadsheet takes for the start of a formula.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
# A number is data, even signed (``-5``, ``+919800000001``): left as it is.
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_ESCAPE: Final = "'"


def _runs_as_formula(text: str) -> bool:
    return text.startswith(_FORMULA_START) and _NUMBER.fullmatch(text) is None


def encode_text(text: str) -> str:
    """``text`` as a written cell: a ``'`` in front if a spreadsheet would run it, or if
    it starts with ``'`` before what a spreadsheet would run (so reading stays exact)."""
    return _ESCAPE + text if _runs_as_formula(text.lstrip(_ESCAPE)) else text


def decode_text(text: str) -> str:
    """A read cell's text: the ``'`` :func:`encode_text` put in front taken off."""
    if text.startswith(_ESCAPE) and _runs_as_formula(text.lstrip(_ESCAPE)):
        return text[1:]
    return text


# --------------------------------------------------------------------------- models


def csv_cell_types(model: type[Any]) -> dict[str, type[Any]]:
    """Each wire key of a request model (nested request models included) and the scalar
    Python type its CSV cell holds (``str``, ``bool``, ``int``, ...), for reading imports."""
    cells: dict[str, type[Any]] = {}
    hints = typing.get_type_hints(model)
    for a in attrs.fields(model):
        for member in _members(hints[a.name]):
            if typing.get_origin(member) is tuple:
                (item, *_) = typing.get_args(member)
                if attrs.has(item):
                    cells.update(csv_cell_types(item))
            elif member is not type(None) and isinstance(member, type):
                cells.setdefault(wire_name(a), member)
    return cells


def _members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _nested_models(hint: Any) -> Iterator[type[Any]]:
    """The attrs classes a field's type holds (through unions, lists and tuples)."""
    for member in _members(hint):
        if attrs.has(member):
            yield member
        for arg in typing.get_args(member):
            if attrs.has(arg):
                yield arg


_CELLS_OF: dict[type[Any], tuple[frozenset[str], frozenset[str]]] = {}


def _cells_of(model: type[Any]) -> tuple[frozenset[str], frozenset[str]]:
    """The wire keys of ``model`` whose cells are booleans, and whole numbers."""
    found = _CELLS_OF.get(model)
    if found is None:
        kinds = csv_cell_types(model)
        found = (
            frozenset(name for name, kind in kinds.items() if kind is bool),
            frozenset(name for name, kind in kinds.items() if kind is int),
        )
        _CELLS_OF[model] = found
    return found


_COLUMN_NAMES: dict[tuple[type[Any], ...], Mapping[str, str]] = {}


def _column_names(models: tuple[type[Any], ...]) -> Mapping[str, str]:
    """{name a header may use: wire name} for every field of ``models`` and the models
    they nest: the wire name itself and the Python attribute name."""
    found = _COLUMN_NAMES.get(models)
    if found is None:
        found = _COLUMN_NAMES[models] = _names_of(models)
    return found


def _names_of(models: tuple[type[Any], ...]) -> dict[str, str]:
    names: dict[str, str] = {}
    seen: set[type[Any]] = set()
    pending = list(models)
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        hints = typing.get_type_hints(model)
        for field in attrs.fields(model):
            wire = wire_name(field)
            names[wire] = wire
            names.setdefault(field.name, wire)
            pending.extend(_nested_models(hints[field.name]))
    return names


# --------------------------------------------------------------------------- writing


def encode_cell(value: Any) -> str:
    """A scalar wire value as its CSV cell: ``None`` empty, booleans ``true``/``false``,
    text a spreadsheet would run as a formula neutralised (:func:`encode_text`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return encode_text(str(value))


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A wire record as CSV cells: dotted paths into lists, JSON values as text."""
    cells: dict[str, str] = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            cells.update(flatten(value, f"{path}."))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    cells.update(flatten(item, f"{path}.{index}."))
                else:
                    cells[f"{path}.{index}"] = encode_cell(item)
        else:
            cells[path] = encode_cell(value)
    return cells


def export_columns(seen: Iterable[str]) -> list[str]:
    """The header of an export whose rows had the columns ``seen`` (in order of first
    sight): top-level fields first, then the dotted ones, each group as seen."""
    return sorted(seen, key=lambda name: "." in name)


def writer(stream: IO[str], columns: Sequence[str]) -> csv.DictWriter[str]:
    """A writer of rows of :func:`flatten` cells under ``columns`` (a missing cell is empty)."""
    return csv.DictWriter(stream, fieldnames=columns, restval="", dialect=Dialect)


# --------------------------------------------------------------------------- reading


def records(
    lines: Iterator[tuple[int, str | None]], *, max_chars: int, too_long: str
) -> Iterator[tuple[int, list[str] | str]]:
    """``(first line, cells)`` per CSV record of the numbered ``lines`` (a line ``None``
    was too long to hold: its problem is ``too_long``), or ``(line, problem)`` for one
    that cannot be read; a quote left open is reported on its line and reading resumes
    on the next. A record is at most ``max_chars`` long, whatever lines it spans.

    A record spanning lines (a quoted cell holding a line break) that does not come out
    as wide as the first record (the header) is taken for a quote left open, not a cell.
    """
    pushed: deque[tuple[int, str | None]] = deque()
    width: int | None = None

    def take() -> tuple[int, str | None] | None:
        return pushed.popleft() if pushed else next(lines, None)

    while (first := take()) is not None:
        start, text = first
        if text is None:
            yield start, too_long
            continue
        if not text.strip():
            continue
        taken: list[tuple[int, str | None]] = [first]
        # An odd number of quotes so far: a quoted cell goes on to the next line.
        while text.count(_QUOTE) % 2 and len(taken) < _MAX_RECORD_LINES:
            following = take()
            if following is None:
                break
            if following[1] is None or len(text) + len(following[1]) > max_chars:
                pushed.appendleft(following)  # not part of this record: read on its own
                break
            taken.append(following)
            text += following[1]
        cells: list[str] | None = None
        problem = "has an unclosed quote"
        if text.count(_QUOTE) % 2 == 0:
            try:
                cells = next(csv.reader([text], dialect=Dialect), [])
            except csv.Error as exc:
                if len(taken) == 1:
                    problem = f"is not valid CSV ({exc})"
        spans = len(taken) > 1
        if cells is None or (spans and width is not None and len(cells) != width):
            pushed.extendleft(reversed(taken[1:]))  # the next line starts the next record
            yield start, problem
            continue
        if width is None:
            width = len(cells)
        yield start, cells


def read_header(cells: Sequence[str], models: tuple[type[Any], ...]) -> list[str]:
    """The columns a header names, as wire paths: each part that is a Python attribute
    name of ``models`` (or of a model they nest) read as its wire name.

    Raises :class:`HeaderError` naming the columns when two name one field (after that
    reading; ``.00.`` is ``.0.``). A value and a place inside it (``address`` and
    ``address.0``) are not refused here: only a row that fills both is (its cells clash).
    """
    names = _column_names(models)
    paths = [".".join(names.get(part, part) for part in cell.strip().split(".")) for cell in cells]
    seen: dict[tuple[str, ...], int] = {}
    for number, path in enumerate(paths):
        parts = path.split(".", MAX_COLUMN_PARTS)
        if len(parts) > MAX_COLUMN_PARTS:
            continue  # each row that fills it is rejected for its length
        key = tuple(str(int(p)) if _is_index(p) and len(p) <= 4 else p for p in parts)
        if key in seen:
            raise _ambiguous(cells, seen[key], number)
        seen[key] = number
    return paths


def _ambiguous(cells: Sequence[str], first: int, second: int) -> HeaderError:
    one, other = (excerpt(cells[i].strip(), 60) for i in (first, second))
    return HeaderError(
        f"cannot be read unambiguously: columns {first + 1} {one!r} and {second + 1} "
        f"{other!r} name the same field; keep one",
        (one, other),
    )


def row_problem(header: Sequence[str], cells: Sequence[str]) -> str | None:
    """Why a record cannot be a row under ``header`` (not as many cells), or None."""
    if len(cells) == len(header):
        return None
    what = "fewer" if len(cells) < len(header) else "more"
    return f"has {len(cells)} cells, {what} than the header's {len(header)} columns"


def read_cells(
    header: Sequence[str], cells: Sequence[str], model: type[Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The wire object of ``model`` that a row's cells describe under ``header``, and
    {column: problem} for each cell that could not be placed or read (left out)."""
    result: dict[str, Any] = {}
    bad: dict[str, str] = {}
    booleans, integers = _cells_of(model)
    for path, text in zip(header, cells, strict=True):
        if text == "":
            continue
        try:
            _place(result, path, decode_text(text), booleans, integers)
        except ValueError as exc:
            bad[path] = str(exc)
    nested: dict[str, Any] = _drop_gaps(result)
    return nested, bad


def _place(
    result: dict[str, Any],
    path: str,
    text: str,
    booleans: frozenset[str],
    integers: frozenset[str],
) -> None:
    """Put the cell ``text`` of the column ``path`` into ``result``; raises ValueError."""
    parts = path.split(".", MAX_COLUMN_PARTS)
    if len(parts) > MAX_COLUMN_PARTS:
        count = path.count(".") + 1
        raise ValueError(
            f"column {_column(path)}: {count} dotted parts, more than {MAX_COLUMN_PARTS}"
        )
    name = _column(path)
    target: Any = result
    for part, following in itertools.pairwise(parts):
        kind: type[Any] = list if _is_index(following) else dict
        if isinstance(target, list):
            index = _index(name, part)
            while len(target) <= index:
                target.append(kind())
            target = target[index]
        else:
            target = target.setdefault(part, kind())
        if not isinstance(target, kind):
            raise ValueError(f"column {name} clashes with another column")
    leaf = parts[-1]
    if isinstance(target, list):
        index = _index(name, leaf)
        while len(target) <= index:
            target.append(None)
        target[index] = text
        return
    if isinstance(target.get(leaf), (dict, list)):
        raise ValueError(f"column {name} clashes with another column")
    target[leaf] = _decode_cell(path, leaf, text, booleans, integers)


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def _index(name: str, part: str) -> int:
    """The list index ``part`` of the column ``name``; raises ValueError."""
    if not _is_index(part):
        raise ValueError(f"column {name}: {excerpt(part, 20)!r} is not a list index")
    if len(part) > len(str(_MAX_INDEX)) or int(part) > _MAX_INDEX:
        raise ValueError(f"column {name}: list index {excerpt(part, 20)} is too large")
    return int(part)


def _column(path: str) -> str:
    """A column's name as a problem quotes it: short."""
    return repr(excerpt(path, 60))


def _drop_gaps(value: Any) -> Any:
    # Sparse columns (a contact 2 with no contact 1) leave empty places in a list.
    if isinstance(value, dict):
        return {key: _drop_gaps(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_drop_gaps(item) for item in value if item not in (None, {}, [])]
    return value


def decode_flag(path: str, text: str) -> bool:
    """A flag's cell (``true``/``yes``/``1``, ``false``/``no``/``0``); raises ValueError
    naming ``path``."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise ValueError(f"{path}: must be true or false, got {excerpt(text, 40)!r}")


def _decode_cell(
    path: str, field: str, text: str, booleans: frozenset[str], integers: frozenset[str]
) -> Any:
    if field in booleans:
        return decode_flag(path, text)
    if field in integers:
        try:
            if len(text.strip().lstrip("+-")) > MAX_NUMBER_DIGITS:
                raise ValueError("too long")
            return int(text)
        except ValueError:
            raise ValueError(f"{path}: must be a whole number, got {excerpt(text, 40)!r}") from None
    return text
