"""EnKash's documented field rules, as checks that return a problem or None.

The models declare each field once with its check (``attrs.field`` metadata under
:data:`CHECK`); the checks and the rule that runs them (:func:`validate`) live here, so the
models hold declarations only.

The patterns are the seed's own (``shared/seeds``), matched against the whole value.
Java's ``\\d`` is ASCII-only, so every pattern is compiled with ``re.ASCII``.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

import attrs

from enkash_async._unset import UNSET
from enkash_async.errors import FieldError, ValidationError

__all__ = [
    "CHECK",
    "PATTERNS",
    "checks_of",
    "choice",
    "clock",
    "flag",
    "gstin_check_character",
    "int32",
    "is_valid_gstin",
    "is_valid_pan",
    "items",
    "moment",
    "number",
    "pan_or_gstin_problem",
    "pattern_problem",
    "text",
    "validate",
]

_EMAIL = (
    r"(?:[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r'|"(?:[\x01-\x08\x0b\x0c\x0e-\x1f\x21\x23-\x5b\x5d-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])*")'
    r"@(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"|\[(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?"
    r"|[a-zA-Z0-9-]*[a-zA-Z0-9]:(?:[\x01-\x08\x0b\x0c\x0e-\x1f\x21-\x5a\x53-\x7f]"
    r"|\\[\x01-\x09\x0b\x0c\x0e-\x7f])+)\])"
)
_PHONE = r"^$|^((\+|00)(\d{1,3})[\s-]?)?(\d{10})$"

#: Wire field name -> the seed's pattern for it.
PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    name: re.compile(rx, re.ASCII)
    for name, rx in {
        "accountNumber": r"^$|^[A-Za-z0-9]{9,36}$",
        "companyId": r"^CEK[A-Z0-9]{7}$",
        "customerId": r"^KC[A-Z0-9]{14}$",
        "contactNumber": _PHONE,
        "email": _EMAIL,
        "mobile": _PHONE,
        "ifsc": r"^$|^[A-Za-z]{4}0[A-Z0-9a-z]{6}$",
        "pinCode": r"^$|^[0-9]{6}$",
    }.items()
}

#: What each pattern means, for error messages a person can act on.
_DESCRIPTIONS: Final[dict[str, str]] = {
    "accountNumber": "9 to 36 letters or digits",
    "companyId": "'CEK' followed by 7 upper-case letters or digits",
    "customerId": "'KC' followed by 14 upper-case letters or digits",
    "contactNumber": "10 digits, optionally after +CC or 00CC",
    "email": "an e-mail address",
    "mobile": "10 digits, optionally after +CC or 00CC",
    "ifsc": "4 letters, '0', then 6 letters or digits (e.g. HDFC0001234)",
    "pinCode": "6 digits",
}

_PAN = re.compile(r"[A-Za-z]{3}[ABCFGHLJPTKEabcfghljptke][A-Za-z]\d{4}[A-Za-z]", re.ASCII)
_GSTIN = re.compile(
    r"(0[1-9]|[1-2][0-9]|3[0-7])[A-Za-z]{3}[ABCFGHLJPTKabcfghljptk][A-Za-z]\d{4}[A-Za-z]"
    r"[A-Za-z0-9][Zz][A-Za-z0-9]",
    re.ASCII,
)
_BASE36: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def pattern_problem(wire_name: str, value: str) -> str | None:
    """Why ``value`` breaks the seed pattern of ``wire_name``, or None if it fits."""
    if PATTERNS[wire_name].fullmatch(value):
        return None
    return f"must be {_DESCRIPTIONS[wire_name]}; got {_show(value)}"


def gstin_check_character(first14: str) -> str:
    """The GSTIN check character for the first 14 characters (Luhn mod 36 over 0-9A-Z)."""
    total = 0
    for index, char in enumerate(first14.upper()):
        product = _BASE36.index(char) * (2 if index % 2 else 1)
        total += product // 36 + product % 36
    return _BASE36[(36 - total % 36) % 36]


def is_valid_pan(value: str) -> bool:
    """True if ``value`` is a PAN in the seed's format."""
    return _PAN.fullmatch(value) is not None


def is_valid_gstin(value: str) -> bool:
    """True if ``value`` is a GSTIN in the seed's format with a correct check character."""
    return (
        _GSTIN.fullmatch(value) is not None
        and gstin_check_character(value[:14]) == value[14].upper()
    )


def pan_or_gstin_problem(value: str) -> str | None:
    """Why ``value`` is neither empty, a PAN nor a valid GSTIN, or None."""
    if value == "" or is_valid_pan(value):
        return None
    if len(value) == 15 and _GSTIN.fullmatch(value):
        if is_valid_gstin(value):
            return None
        return (
            f"GSTIN check character is wrong: expected "
            f"{gstin_check_character(value[:14])!r}, got {value[14]!r}"
        )
    return f"must be a 10-character PAN or a 15-character GSTIN; got {_show(value)}"


def _show(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


# A check takes a value and answers the problem with it, or None.
Check = Callable[[Any], "str | None"]


# --------------------------------------------------------------------------- checks

_INT32 = (-(2**31), 2**31 - 1)

#: Metadata key of a request field's check.
CHECK: Final = "enkash_async.check"


def text(*, required: bool = False, blank: bool = True, pattern: str | None = None) -> Check:
    """A text field's check: required or not, blank allowed or not, a seed pattern."""

    def check(value: Any) -> str | None:
        if value is None:
            return "is required" if required else None
        if not isinstance(value, str):
            return f"must be a string, got {type(value).__name__}"
        if not blank and not value.strip():
            return "must not be blank"
        if pattern == "panOrGstin":
            return pan_or_gstin_problem(value)
        if pattern is not None:
            return pattern_problem(pattern, value)
        return None

    return check


def flag(*, required: bool = False) -> Check:
    """A boolean field's check."""

    def check(value: Any) -> str | None:
        if value is None:
            return "is required" if required else None
        if not isinstance(value, bool):
            return f"must be true or false, got {type(value).__name__}"
        return None

    return check


def int32(value: Any) -> str | None:
    """A 32-bit integer field's check (Java's int)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"must be an integer, got {type(value).__name__}"
    if not _INT32[0] <= value <= _INT32[1]:
        return "must fit in 32 bits"
    return None


def number(value: Any) -> str | None:
    """A finite number field's check (JSON has no NaN)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return f"must be a number, got {type(value).__name__}"
    if isinstance(value, int) or (
        value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    ):
        return None
    return f"must be a finite number; got {value!r}"  # JSON has no NaN or Infinity


def choice(enum_type: type[enum.Enum]) -> Check:
    """An enum field's check: a member of ``enum_type``."""
    allowed = ", ".join(m.value for m in enum_type)

    def check(value: Any) -> str | None:
        if value is None or isinstance(value, enum_type):
            return None
        return f"must be one of {allowed}; got {value!r}"

    return check


def moment(value: Any) -> str | None:
    """A date-time field's check."""
    if value is None or isinstance(value, dt.datetime):
        return None
    return f"must be a datetime, got {type(value).__name__}"


def clock(value: Any) -> str | None:
    """A time-of-day field's check: whole minutes, as ``HH:mm`` carries it."""
    if value is None:
        return None
    if isinstance(value, dt.time) and not (value.second or value.microsecond or value.tzinfo):
        return None  # "HH:mm" carries it whole
    return f"must be a time of day in whole minutes, or an 'HH:mm' string; got {value!r}"


def items(item_type: type[Any], *, required: bool = False) -> Check:
    """A list field's check: a list (or tuple) of ``item_type``."""

    def check(value: Any) -> str | None:
        if value is None:
            return "is required" if required else None
        if not isinstance(value, (list, tuple)):
            return f"must be a list, got {type(value).__name__}"
        for index, item in enumerate(value):
            if not isinstance(item, item_type):
                return f"[{index}] must be a {item_type.__name__}, got {type(item).__name__}"
        return None

    return check


_CHECKS: dict[type[Any], tuple[tuple[str, Check], ...]] = {}


def checks_of(model: type[Any]) -> tuple[tuple[str, Check], ...]:
    """Each checked field of ``model`` and its check, from the fields' metadata."""
    found = _CHECKS.get(model)
    if found is None:
        found = _CHECKS[model] = tuple(
            (a.name, a.metadata[CHECK]) for a in attrs.fields(model) if CHECK in a.metadata
        )
    return found


def validate(model: object) -> None:
    """Run every field check of ``model``; raises one :class:`ValidationError` naming
    each bad field."""
    problems = [
        FieldError(name, problem)
        for name, check in checks_of(type(model))
        if (value := getattr(model, name)) is not UNSET and (problem := check(value)) is not None
    ]
    if problems:
        raise ValidationError(problems, model=type(model).__name__)
