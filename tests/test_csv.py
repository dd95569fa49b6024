"""The CSV format's cell rules (enkash_async/_csv.py): formulas neutralised on writing,
exactly undone on reading."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enkash_async._csv import decode_text, encode_text

FORMULA_STARTS = "=+-@\t\r"


@given(st.text(alphabet=st.sampled_from("=+-@\t\r'5.a "), max_size=8) | st.text(max_size=20))
def test_reading_a_written_cell_gives_back_the_same_text(text: str) -> None:
    assert decode_text(encode_text(text)) == text


@given(st.text(max_size=20))
def test_no_written_cell_starts_a_formula_unless_it_is_a_number(text: str) -> None:
    written = encode_text(text)
    if written[:1] and written[0] in FORMULA_STARTS:
        assert written.lstrip("+-").replace(".", "", 1).isdigit()


@pytest.mark.parametrize("number", ["-5", "+919800000001", "-1.25", "+.5", "12"])
def test_a_number_is_data_and_written_as_it_is(number: str) -> None:
    assert encode_text(number) == number


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=1+1", "'=1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("'=1", "''=1"),
        ("'plain", "'plain"),
        ("'-5", "'-5"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_after_one_quote(text: str, written: str) -> None:
    assert encode_text(text) == written


def test_a_quote_before_text_that_is_no_formula_is_read_as_it_is() -> None:
    assert decode_text("'s-Hertogenbosch") == "'s-Hertogenbosch"
