"""The documented field rules: every pattern matches the whole value, PAN or checked GSTIN."""

from __future__ import annotations

import pytest

from enkash_async._validation import (
    PATTERNS,
    gstin_check_character,
    is_valid_gstin,
    is_valid_pan,
    pan_or_gstin_problem,
    pattern_problem,
)

# One value per pattern that the API documents as valid.
VALID = {
    "accountNumber": "50100123456789",
    "companyId": "CEK12AB34Z",
    "customerId": "KC0A1B2C3D4E5F6G",
    "contactNumber": "+91 9876543210",
    "email": "accounts@example.co.in",
    "mobile": "9876543210",
    "ifsc": "HDFC0001234",
    "pinCode": "560001",
}


def test_every_documented_pattern_has_a_rule() -> None:
    assert set(PATTERNS) == set(VALID)


@pytest.mark.parametrize(("field", "value"), VALID.items())
def test_a_valid_value_is_accepted(field: str, value: str) -> None:
    assert pattern_problem(field, value) is None


@pytest.mark.parametrize("junk", [" ", "\n", "\r\n", "!", "/x", "\x00", " 1"])
@pytest.mark.parametrize(("field", "value"), VALID.items())
def test_a_valid_value_plus_trailing_junk_is_rejected(field: str, value: str, junk: str) -> None:
    assert pattern_problem(field, value + junk) is not None


@pytest.mark.parametrize(("field", "value"), VALID.items())
def test_leading_junk_is_rejected(field: str, value: str) -> None:
    assert pattern_problem(field, "x " + value) is not None


def arabic_indic(digits: str) -> str:
    return "".join(chr(0x0660 + int(d)) for d in digits)


def devanagari(digits: str) -> str:
    return "".join(chr(0x0966 + int(d)) for d in digits)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mobile", arabic_indic("9876543210")),  # Java's \d is ASCII-only
        ("contactNumber", "+" + arabic_indic("91") + "9876543210"),
        ("pinCode", devanagari("560001")),
        ("pinCode", "56000" + devanagari("1")),
        ("ifsc", "HDFC0\u00c4\u00d6\u00dc234"),
    ],
)
def test_non_ascii_digits_and_letters_are_rejected(field: str, value: str) -> None:
    assert pattern_problem(field, value) is not None


@pytest.mark.parametrize("field", ["accountNumber", "contactNumber", "mobile", "ifsc", "pinCode"])
def test_empty_is_allowed_where_the_seed_says_so(field: str) -> None:
    assert pattern_problem(field, "") is None


def test_an_empty_company_id_is_rejected() -> None:
    assert pattern_problem("companyId", "") is not None


@pytest.mark.parametrize(
    "value",
    [
        "9876543210",
        "+919876543210",
        "+91 9876543210",
        "+91-9876543210",
        "00919876543210",
        "+1 9876543210",
        "+123-9876543210",
    ],
)
def test_phone_numbers_may_carry_a_country_code(value: str) -> None:
    assert pattern_problem("mobile", value) is None
    assert pattern_problem("contactNumber", value) is None


@pytest.mark.parametrize(
    "value", ["987654321", "98765432101", "+1234 9876543210", "91 9876543210", "+91  9876543210"]
)
def test_phone_numbers_of_the_wrong_shape_are_rejected(value: str) -> None:
    assert pattern_problem("mobile", value) is not None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("12345678", False),
        ("123456789", True),
        ("A" * 36, True),
        ("A" * 37, False),
        ("1234-56789", False),
    ],
)
def test_account_number_is_9_to_36_letters_or_digits(value: str, ok: bool) -> None:
    assert (pattern_problem("accountNumber", value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("CEK1234567", True),
        ("CEKABCDEFG", True),
        ("cek1234567", False),
        ("CEK123456", False),
        ("CEKabcdefg", False),
    ],
)
def test_company_id_is_cek_and_7_upper_case_letters_or_digits(value: str, ok: bool) -> None:
    assert (pattern_problem("companyId", value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("hdfc0abc123", True), ("HDFC1001234", False), ("HDF00001234", False), ("HDFC000123", False)],
)
def test_ifsc_is_4_letters_zero_and_6_letters_or_digits(value: str, ok: bool) -> None:
    assert (pattern_problem("ifsc", value) is None) is ok


@pytest.mark.parametrize(
    "value",
    ["a@b.co", "first.last+tag@mail.example.com", '"john..doe"@example.com', "user@[192.168.0.1]"],
)
def test_email_accepts_addresses_the_seed_allows(value: str) -> None:
    assert pattern_problem("email", value) is None


@pytest.mark.parametrize("value", ["string", "a@", "@b.com", "a@b", "a b@c.com", "a@b.com x"])
def test_email_rejects_non_addresses(value: str) -> None:
    assert pattern_problem("email", value) is not None


def test_a_problem_says_what_the_value_must_be_and_quotes_it_shortly() -> None:
    problem = pattern_problem("pinCode", "5600")
    assert problem is not None and "6 digits" in problem and "'5600'" in problem
    long_problem = pattern_problem("pinCode", "9" * 500)
    assert long_problem is not None and len(long_problem) < 100


# --------------------------------------------------------------------------- PAN / GSTIN

GOOD_GSTIN = "27AAPFU0939F1ZV"


def test_the_known_gstin_carries_a_correct_check_character() -> None:
    assert gstin_check_character(GOOD_GSTIN[:14]) == "V"
    assert is_valid_gstin(GOOD_GSTIN)
    assert pan_or_gstin_problem(GOOD_GSTIN) is None


def test_a_gstin_with_a_wrong_check_character_is_rejected_naming_the_right_one() -> None:
    problem = pan_or_gstin_problem("27AAPFU0939F1ZX")
    assert problem is not None
    assert "check character" in problem and "'V'" in problem
    assert not is_valid_gstin("27AAPFU0939F1ZX")


def test_every_wrong_check_character_is_rejected() -> None:
    wrong = [c for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c != "V"]
    assert all(pan_or_gstin_problem(GOOD_GSTIN[:14] + c) for c in wrong)


def test_a_gstin_is_read_case_insensitively_like_the_seed_pattern() -> None:
    assert pan_or_gstin_problem(GOOD_GSTIN.lower()) is None


@pytest.mark.parametrize("value", ["AAPFU0939F", "aapfu0939f", "ABCEX1234Y"])
def test_a_pan_is_accepted(value: str) -> None:
    assert is_valid_pan(value)
    assert pan_or_gstin_problem(value) is None


def test_empty_pan_or_gstin_is_allowed() -> None:
    assert pan_or_gstin_problem("") is None


@pytest.mark.parametrize(
    "value",
    [
        GOOD_GSTIN + "X",  # the seed's "^(GSTIN)?" alternative accepts any tail after a find()
        GOOD_GSTIN + "\n",
        "AAPFU0939F" + "junk",
        "AAPFU0939F\n",
        "string",
        "anything at all",
        "38AAPFU0939F1ZV",  # state code above 37
        "00AAPFU0939F1ZV",
        "27AAPFU0939F1YV",  # 14th character must be Z
        "AAPDU0939F",  # 4th character of a PAN is a holder type; D is not one
    ],
)
def test_anything_but_a_pan_or_a_gstin_is_rejected(value: str) -> None:
    assert pan_or_gstin_problem(value) is not None
