"""CSV and JSONL sources: wire names, file lines, every reason, no row swallowed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from enkash_async.sync import SourceError, count_rows, read_csv, read_file, read_jsonl

HEADER = (
    "uniqueRefNo,legalName,customerKeyContacts.0.name,customerKeyContacts.0.legalName,"
    "customerKeyContacts.0.mobile,customerKeyContacts.0.deleted\n"
)


def row(i: int, name: str | None = None) -> str:
    return f"R-{i},{name or f'Firm {i}'},Asha,Asha Rao,98{i:08d},false\n"


def outcomes(text: str) -> list[tuple[int, str | None, tuple[str, ...]]]:
    return [
        (r.line, r.customer.unique_ref_no if r.customer else None, r.problems)
        for r in read_csv(io.StringIO(text))
    ]


def test_each_csv_row_carries_its_file_line() -> None:
    assert [(line, ref) for line, ref, _ in outcomes(HEADER + row(1) + "\n" + row(2))] == [
        (2, "R-1"),
        (4, "R-2"),
    ]


def test_a_quoted_cell_with_a_line_break_is_one_row_and_the_next_line_counts_on() -> None:
    text = HEADER + row(1, '"Firm\nOne"') + row(2)

    assert [(line, ref) for line, ref, _ in outcomes(text)] == [(2, "R-1"), (4, "R-2")]


def test_an_unclosed_quote_is_reported_on_its_line_and_never_swallows_the_next_row() -> None:
    text = HEADER + row(1) + row(2, '"Firm 2') + row(3) + row(4)

    assert outcomes(text) == [
        (2, "R-1", ()),
        (3, None, ("has an unclosed quote",)),
        (4, "R-3", ()),
        (5, "R-4", ()),
    ]


def test_a_stray_quote_at_the_end_of_a_row_is_an_unclosed_quote() -> None:
    text = HEADER + row(1).replace("false", 'false"') + row(2)

    assert outcomes(text) == [(2, None, ("has an unclosed quote",)), (3, "R-2", ())]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("R-9,Short Ltd\n", "has 2 cells, fewer than the header's 6 columns"),
        (
            "R-9,Long,Asha,Asha Rao,9800000009,false,extra\n",
            "has 7 cells, more than the header's 6 columns",
        ),
    ],
    ids=["short", "long"],
)
def test_a_short_or_long_row_is_reported_as_such(line: str, problem: str) -> None:
    assert outcomes(HEADER + line + row(2)) == [(2, None, (problem,)), (3, "R-2", ())]


def test_every_problem_of_a_row_is_reported_in_wire_names_and_dotted_paths() -> None:
    text = HEADER + "R-1,,Asha,Asha Rao,12,false\n"

    ((line, _, problems),) = outcomes(text)

    assert line == 2
    assert sorted(p.split(":")[0] for p in problems) == [
        "customerKeyContacts.0.mobile",
        "legalName",
    ]


def test_read_only_fields_enkash_assigns_are_ignored_and_counted() -> None:
    record = {
        "customerId": "KC1",
        "createdOn": "2024-01-01T00:00:00Z",
        "active": True,
        "legalName": "Firm",
        "uniqueRefNo": "R-1",
        "customerKeyContacts": [
            {
                "name": "A",
                "customerName": "A Rao",
                "mobile": "9800000001",
                "deleted": False,
                "customerId": "KC1",
            }
        ],
    }

    (only,) = read_jsonl(io.StringIO(json.dumps(record) + "\n"))

    assert only.problems == ()
    assert only.ignored == 3  # customerId, createdOn and the contact's customerId
    assert sorted(only.ignored_names) == [
        "createdOn",
        "customerId",
        "customerKeyContacts.0.customerId",
    ]
    assert only.active is True  # written by activate/deactivate: not ignored
    assert only.customer is not None
    assert only.customer.customer_key_contacts[0].legal_name == "A Rao"


def test_jsonl_problems_use_wire_names_with_list_indexes() -> None:
    record = {
        "legalName": "Firm",
        "uniqueRefNo": "R-1",
        "customerKeyContacts": [{"name": "A", "legalName": "A", "mobile": "12", "deleted": False}],
    }

    (only,) = read_jsonl(io.StringIO("\n" + json.dumps(record) + "\n"))

    assert only.line == 2
    assert only.problems[0].startswith("customerKeyContacts[0].mobile: ")


def test_a_file_is_read_lazily(tmp_path: Path) -> None:
    source = tmp_path / "big.csv"
    source.write_text(HEADER + "".join(row(i) for i in range(1, 5001)), encoding="utf-8")

    rows: Iterator[object] = read_file(str(source))
    first = next(rows)  # type: ignore[call-overload]

    assert first.line == 2
    assert count_rows(str(source)) == 5000


def test_a_header_that_cannot_be_read_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="line 1"):
        list(read_csv(io.StringIO('"uniqueRefNo,legalName\n')))


def test_only_csv_and_jsonl_files_are_sources(tmp_path: Path) -> None:
    source = tmp_path / "customers.xlsx"
    source.write_bytes(b"PK")

    with pytest.raises(SourceError, match=r"use a \.csv or \.jsonl file"):
        read_file(str(source))


def test_every_bad_cell_of_a_row_is_reported_with_the_rows_other_problems() -> None:
    header = HEADER.rstrip("\n") + ",customerReminders.0.dueDateDifference\n"
    text = header + "R-1,,Asha,Asha Rao,9800000001,maybe,soon\n"

    ((line, ref, problems),) = outcomes(text)

    assert (line, ref) == (2, None)
    assert problems == (
        "customerKeyContacts.0.deleted: must be true or false, got 'maybe'",
        "customerReminders.0.dueDateDifference: must be a whole number, got 'soon'",
        "legalName: is required",
    )


def test_patch_only_columns_are_read_and_an_empty_cell_clears_them() -> None:
    text = (
        "uniqueRefNo,legalName,customerKeyContacts.0.name,customerKeyContacts.0.legalName,"
        "customerKeyContacts.0.mobile,customerKeyContacts.0.deleted,active,branchCodes.0,"
        "branchCodes.1,assignedAgent,parentCompanyId\n"
        "R-1,Firm,A,A Rao,9800000001,false,false,BR1,BR2,Meera,CEK1234567\n"
        "R-2,Firm,A,A Rao,9800000001,false,,,,,\n"
    )

    first, second = read_csv(io.StringIO(text))

    assert (first.active, first.branch_codes, first.assigned_agent) == (
        False,
        ("BR1", "BR2"),
        "Meera",
    )
    assert first.ignored_names == ("parentCompanyId",)  # EnKash assigns it
    assert (second.active, second.branch_codes, second.assigned_agent) == (None, None, None)


def test_a_file_without_patch_only_fields_leaves_them_unset() -> None:
    from enkash_async import UNSET

    record = {
        "legalName": "Firm",
        "uniqueRefNo": "R-1",
        "customerKeyContacts": [
            {"name": "A", "legalName": "A Rao", "mobile": "9800000001", "deleted": False}
        ],
    }

    (only,) = read_jsonl(io.StringIO(json.dumps(record) + "\n"))

    assert (only.active, only.branch_codes, only.assigned_agent) == (None, UNSET, UNSET)


def test_a_bad_active_cell_is_a_problem_of_its_row() -> None:
    record = {
        "legalName": "Firm",
        "uniqueRefNo": "R-1",
        "active": "maybe",
        "customerKeyContacts": [
            {"name": "A", "legalName": "A Rao", "mobile": "9800000001", "deleted": False}
        ],
    }

    (only,) = read_jsonl(io.StringIO(json.dumps(record) + "\n"))

    assert only.customer is None
    assert any(p.startswith("active:") for p in only.problems)
