"""Customer files: reading CSV/JSONL imports, writing exports, rejects and checkpoints.

A CSV column is a wire field name, or a dotted path into the nested lists
(``customerKeyContacts.0.mobile``); empty cells are left out. Checkpoints are JSON lines
appended and flushed as work happens, so a crash loses at most the line being written.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["Checkpoint", "InputError", "check_input", "read_rows"]

# CSV cells are text; these wire fields are not.
_BOOLEAN_FIELDS = frozenset(
    {"deleted", "mail_enabled", "sms_enabled", "whatsapp_enabled", "externalSource"}
)
_INTEGER_FIELDS = frozenset({"dueDateDifference", "reminderInterval"})
# A dotted column's list index above this is a typo, not a list to build.
_MAX_INDEX = 999
_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")


class InputError(Exception):
    """A row that cannot be read at all; ``row`` is its 1-based number (0: the whole input)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}" if row else message)
        self.row = row
        self.message = message


def check_input(path: str) -> None:
    """Raise ``InputError`` or ``OSError`` now if ``path`` cannot be imported at all, so
    nothing (rejects, checkpoint) is written for a file that is not there."""
    if path == "-":
        return
    if Path(path).suffix.lower() not in _SUFFIXES:
        raise InputError(0, f"{path}: use a .csv or .jsonl file")
    with Path(path).open("rb"):
        pass


def read_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Yield ``(row number, wire dict or InputError)`` for each record in a CSV or JSONL file
    (``-`` is JSONL on stdin). Rows are numbered from 1, not counting a CSV header. A row
    that is not UTF-8 text is an ``InputError`` for that row, not the end of the file."""
    if path == "-":
        yield from _jsonl(sys.stdin)
        return
    check_input(path)
    file = Path(path)
    # surrogateescape keeps undecodable bytes so the row holding them can be named.
    with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
        if file.suffix.lower() == ".csv":
            yield from _csv(stream)
        else:
            yield from _jsonl(stream)


def _is_text(text: str) -> bool:
    """False if ``text`` holds bytes that were not UTF-8 (kept as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NOT_UTF8 = "is not UTF-8 text"


def _jsonl(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        if not _is_text(line):
            yield number, InputError(number, _NOT_UTF8)
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, InputError(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            yield number, InputError(number, f"must be a JSON object, got {type(data).__name__}")
            continue
        yield number, data


def _csv(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    reader = csv.DictReader(stream)
    for number, record in enumerate(reader, start=1):
        if None in record:
            yield number, InputError(number, "has more cells than the header has columns")
            continue
        if not all(_is_text(f"{k}{v or ''}") for k, v in record.items()):
            yield number, InputError(number, _NOT_UTF8)
            continue
        try:
            yield number, _nest({k: v for k, v in record.items() if v not in ("", None)})
        except ValueError as exc:
            yield number, InputError(number, str(exc))


def _nest(flat: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for path, text in flat.items():
        parts = path.strip().split(".")
        target: Any = result
        for part, following in itertools.pairwise(parts):
            kind: type[Any] = list if following.isdigit() else dict
            if isinstance(target, list):
                if not part.isdigit():
                    raise ValueError(f"column {path!r}: {part!r} is not a list index")
                index = int(part)
                if index > _MAX_INDEX:
                    raise ValueError(f"column {path!r}: list index {index} is too large")
                while len(target) <= index:
                    target.append(kind())
                target = target[index]
            else:
                target = target.setdefault(part, kind())
            if not isinstance(target, kind):
                raise ValueError(f"column {path!r} clashes with another column")
        leaf = parts[-1]
        value = _cell(leaf, text)
        if isinstance(target, list):
            raise ValueError(f"column {path!r} ends in a list index")
        if isinstance(target.get(leaf), (dict, list)):
            raise ValueError(f"column {path!r} clashes with another column")
        target[leaf] = value
    for key, value in result.items():
        if isinstance(value, list):
            result[key] = [item for item in value if item]  # sparse columns leave gaps
    return result


def _cell(field: str, text: str) -> Any:
    if field in _BOOLEAN_FIELDS:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        raise ValueError(f"{field} must be true or false, got {text!r}")
    if field in _INTEGER_FIELDS:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{field} must be a whole number, got {text!r}") from None
    return text


class Checkpoint:
    """Which rows of an import were sent and which are done, kept in a JSON-lines file.

    A row is written as ``sent`` before its request leaves, ``done`` once EnKash has it
    and ``failed`` once EnKash surely does not, so after a crash the rows sent but neither
    done nor failed are exactly the uncertain ones.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[int, str | None] = {}
        self.sent: set[int] = set()
        failed: set[int] = set()
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    row = int(entry["row"])
                    state = entry["state"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
                if state == "done":
                    self.done[row] = entry.get("customerId")
                elif state == "sent":
                    self.sent.add(row)
                    failed.discard(row)  # sent again after failing: uncertain again
                elif state == "failed":
                    failed.add(row)
        self.uncertain = self.sent - set(self.done) - failed
        self._stream = path.open("a", encoding="utf-8")
        if self._stream.tell() and not _ends_with_newline(path):
            self._stream.write("\n")  # end a line cut short, so the next is whole

    def mark_sent(self, row: int, unique_ref_no: str | None) -> None:
        self._write({"row": row, "state": "sent", "uniqueRefNo": unique_ref_no})

    def mark_done(self, row: int, customer_id: str | None) -> None:
        self.done[row] = customer_id
        self._write({"row": row, "state": "done", "customerId": customer_id})

    def mark_failed(self, row: int) -> None:
        """EnKash answered and did not create the row (a rerun may send it again)."""
        self._write({"row": row, "state": "failed"})

    def _write(self, entry: dict[str, Any]) -> None:
        self._stream.write(json.dumps(entry) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as stream:
        stream.seek(-1, 2)
        return stream.read(1) == b"\n"
