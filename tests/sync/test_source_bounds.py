"""A source file is hostile too: one line too deep, too long or too large to read is that
row's problem (with its line), the rest are read; a path that is not a regular file is
refused before anything is read."""

from __future__ import annotations

import io
import json
import os
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from enkash_async.sync import SourceError, count_rows, read_csv, read_file, read_jsonl
from enkash_async.sync._sources import MAX_COLUMN_PARTS, MAX_LINE_CHARS, MAX_NUMBER_DIGITS


def customer(i: int, **fields: Any) -> dict[str, Any]:
    contact = {"name": "Asha", "legalName": "Asha Rao", "mobile": "9876543210", "deleted": False}
    return {"legalName": f"Firm {i}", "uniqueRefNo": f"R-{i}", "customerKeyContacts": [contact]}


def jsonl(*lines: str) -> list[tuple[int, str | None, tuple[str, ...]]]:
    text = "".join(line + "\n" for line in lines)
    return [
        (r.line, r.customer.unique_ref_no if r.customer else None, r.problems)
        for r in read_jsonl(io.StringIO(text))
    ]


def csv_rows(text: str) -> list[tuple[int, str | None, tuple[str, ...]]]:
    return [
        (r.line, r.customer.unique_ref_no if r.customer else None, r.problems)
        for r in read_csv(io.StringIO(text))
    ]


GOOD_1, GOOD_3 = json.dumps(customer(1)), json.dumps(customer(3))
HEADER = "uniqueRefNo,legalName,customerKeyContacts.0.name,customerKeyContacts.0.legalName,"
HEADER += "customerKeyContacts.0.mobile,customerKeyContacts.0.deleted"


def csv_line(i: int, *extra: str) -> str:
    return ",".join([f"R-{i}", f"Firm {i}", "Asha", "Asha Rao", "9876543210", "false", *extra])


# --------------------------------------------------------------------------- JSONL


def test_a_jsonl_line_nested_100000_deep_is_rejected_and_the_next_lines_are_read() -> None:
    rows = jsonl(GOOD_1, "[" * 100_000 + "]" * 100_000, GOOD_3)

    assert [(line, ref) for line, ref, _ in rows] == [(1, "R-1"), (2, None), (3, "R-3")]
    assert rows[1][2] == ("is nested too deeply to read",)


def test_a_jsonl_value_nested_100000_deep_inside_a_customer_is_rejected() -> None:
    deep = GOOD_1[:-1] + ', "address": ' + "[" * 100_000 + "]" * 100_000 + "}"

    [(line, ref, problems)] = jsonl(deep)
    assert (line, ref, problems) == (1, None, ("is nested too deeply to read",))


def test_a_jsonl_number_of_5000_digits_is_rejected_and_the_next_lines_are_read() -> None:
    big = GOOD_1[:-1] + ', "pinCode": ' + "9" * 5000 + "}"

    rows = jsonl(big, GOOD_3)
    assert [(line, ref) for line, ref, _ in rows] == [(1, None), (2, "R-3")]
    assert rows[0][2] == (f"holds a number of more than {MAX_NUMBER_DIGITS} digits",)


def test_a_jsonl_line_longer_than_the_limit_is_rejected_unread_and_the_next_is_read() -> None:
    long = GOOD_1[:-1] + ', "address": "' + "x" * MAX_LINE_CHARS + '"}'

    rows = jsonl(GOOD_1, long, GOOD_3)
    assert [(line, ref) for line, ref, _ in rows] == [(1, "R-1"), (2, None), (3, "R-3")]
    assert rows[1][2] == (f"is longer than {MAX_LINE_CHARS:,} characters, the limit for one line",)


# --------------------------------------------------------------------------- CSV


def test_a_csv_column_of_3001_dotted_parts_rejects_the_rows_that_fill_it() -> None:
    deep = ".".join(["address"] + ["a"] * 3000)
    text = f"{HEADER},{deep}\n{csv_line(1, 'x')}\n{csv_line(2, '')}\n"

    rows = csv_rows(text)
    assert [(line, ref) for line, ref, _ in rows] == [(2, None), (3, "R-2")]
    [problem] = rows[0][2]
    assert f"3001 dotted parts, more than {MAX_COLUMN_PARTS}" in problem
    assert len(problem) < 200


def test_a_csv_number_of_5000_digits_is_rejected_with_a_short_reason() -> None:
    header = f"{HEADER},customerReminders.0.reminderInterval"
    text = f"{header}\n{csv_line(1, '9' * 5000)}\n{csv_line(2, '3')}\n"

    rows = csv_rows(text)
    assert rows[0][:2] == (2, None)
    [problem] = rows[0][2]
    assert problem.startswith("customerReminders.0.reminderInterval: must be a whole number")
    assert len(problem) < 200


def test_a_csv_line_longer_than_the_limit_is_rejected_and_the_next_is_read() -> None:
    text = f"{HEADER}\n{csv_line(1)}\n{csv_line(2).replace('Firm 2', 'F' * MAX_LINE_CHARS)}\n"
    text += csv_line(3) + "\n"

    rows = csv_rows(text)
    assert [(line, ref) for line, ref, _ in rows] == [(2, "R-1"), (3, None), (4, "R-3")]
    assert rows[1][2] == (f"is longer than {MAX_LINE_CHARS:,} characters, the limit for one line",)


def test_a_csv_header_longer_than_the_limit_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="longer than"):
        csv_rows("a" * (MAX_LINE_CHARS + 1) + "\n" + csv_line(1) + "\n")


# --------------------------------------------------------------------------- the file


def test_a_fifo_is_refused_before_it_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "customers.csv"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_file(str(fifo))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # blocked opening the FIFO: let it go
        with open(fifo, "w"):
            pass
        reader.join(10)
        pytest.fail("read_file blocked on a FIFO")
    assert isinstance(outcome[0], SourceError)
    assert "not a regular file" in str(outcome[0])


def test_a_device_named_csv_is_refused_before_it_is_read(tmp_path: Path) -> None:
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")

    with pytest.raises(SourceError, match="not a regular file"):
        read_file(str(zero))
    with pytest.raises(SourceError, match="not a regular file"):
        count_rows(str(zero))


def test_counting_the_rows_of_a_file_with_a_huge_line_holds_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "customers.jsonl"
    path.write_text(GOOD_1 + "\n" + "x" * 20_000_000 + "\n\n" + GOOD_3 + "\n")

    tracemalloc.start()
    try:
        assert count_rows(str(path)) == 3
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_reading_a_file_with_a_huge_line_holds_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "customers.jsonl"
    path.write_text(GOOD_1 + "\n" + "x" * 20_000_000 + "\n" + GOOD_3 + "\n")

    tracemalloc.start()
    try:
        rows = [(r.line, r.customer is not None) for r in read_file(str(path))]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == [(1, True), (2, False), (3, True)]
    assert peak < 4 * MAX_LINE_CHARS + 2_000_000
