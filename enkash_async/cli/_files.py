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

__all__ = ["Checkpoint", "InputError", "read_rows"]

# CSV cells are text; these wire fields are not.
_BOOLEAN_FIELDS = frozenset(
    {"deleted", "mail_enabled", "sms_enabled", "whatsapp_enabled", "externalSource"}
)
_INTEGER_FIELDS = frozenset({"dueDateDifference", "reminderInterval"})


class InputError(Exception):
    """A row that cannot be read at all; ``row`` is its 1-based number."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(f"row {row}: {message}")
        self.row = row
        self.message = message


def read_rows(path: str) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Yield ``(row number, wire dict or InputError)`` for each record in a CSV or JSONL file
    (``-`` is JSONL on stdin). Rows are numbered from 1, not counting a CSV header."""
    if path == "-":
        yield from _jsonl(sys.stdin)
        return
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise InputError(0, f"{path}: use a .csv or .jsonl file")
    with file.open(encoding="utf-8-sig", newline="") as stream:
        if suffix == ".csv":
            yield from _csv(stream)
        else:
            yield from _jsonl(stream)


def _jsonl(stream: IO[str]) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
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
            if isinstance(target, list):
                index = int(part)
                while len(target) <= index:
                    target.append({} if not following.isdigit() else [])
                target = target[index]
            else:
                target = target.setdefault(part, [] if following.isdigit() else {})
        leaf = parts[-1]
        value = _cell(leaf, text)
        if isinstance(target, list):
            raise ValueError(f"column {path!r} ends in a list index")
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

    A row is written as ``sent`` before its request leaves and ``done`` once EnKash has
    it, so after a crash the rows sent but not done are exactly the uncertain ones.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[int, str | None] = {}
        self.sent: set[int] = set()
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
        self.uncertain = self.sent - set(self.done)
        self._stream = path.open("a", encoding="utf-8")

    def mark_sent(self, row: int, unique_ref_no: str | None) -> None:
        self._write({"row": row, "state": "sent", "uniqueRefNo": unique_ref_no})

    def mark_done(self, row: int, customer_id: str | None) -> None:
        self.done[row] = customer_id
        self._write({"row": row, "state": "done", "customerId": customer_id})

    def _write(self, entry: dict[str, Any]) -> None:
        self._stream.write(json.dumps(entry) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()
