"""EnKash's customer domain as attrs classes.

Request models (``CustomerCreate``, ``KeyContactCreate``, ``ReminderCreate``,
``CustomerSearch``) are strict: each checks its own fields when built and raises one
:class:`~enkash_async.errors.ValidationError` naming every bad field. Reply models
(``Customer``, ``KeyContact``, ``Reminder``) are liberal records with no validators:
whatever EnKash sends is read, and values outside a known enum stay plain strings.

This module knows nothing of HTTP or of EnKash's wire names; ``from_dict``/``to_dict``
delegate to the converter in ``enkash_async._convert``.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs

from enkash_async._validation import pan_or_gstin_problem, pattern_problem
from enkash_async.errors import EnkashError, FieldError, ValidationError

__all__ = [
    "CreateResult",
    "Customer",
    "CustomerCreate",
    "CustomerLevel",
    "CustomerSearch",
    "CustomerSource",
    "CustomerStatus",
    "ErrorType",
    "KeyContact",
    "KeyContactCreate",
    "Page",
    "Reminder",
    "ReminderCreate",
    "ReminderType",
    "SortDirection",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


class ReminderType(str, enum.Enum):
    """How often a payment reminder fires."""

    ONCE = "ONCE"
    RECURRING = "RECURRING"


class CustomerSource(str, enum.Enum):
    """Where a customer record came from."""

    ENKASH = "ENKASH"
    TALLY = "TALLY"


class CustomerStatus(str, enum.Enum):
    """Which customers a search returns by their ``active`` flag."""

    ACTIVE = "ACTIVE"
    ALL = "ALL"
    INACTIVE = "INACTIVE"


class CustomerLevel(str, enum.Enum):
    """EnKash's customer level filter."""

    LEVEL_1 = "LEVEL_1"
    LEVEL_2 = "LEVEL_2"
    LEVEL_3 = "LEVEL_3"


class SortDirection(str, enum.Enum):
    """Order of search results."""

    ASC = "ASC"
    DESC = "DESC"


class ErrorType(str, enum.Enum):
    """The ``errorType`` values EnKash documents in its error envelope."""

    CLIENT_REQUEST_ABORT = "CLIENT_REQUEST_ABORT"
    CLIENT_REQUEST_ERROR = "CLIENT_REQUEST_ERROR"
    INVALID_ACCESS = "INVALID_ACCESS"
    RECORD_NOT_FOUND = "RECORD_NOT_FOUND"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    UNAUTHORIZED = "UNAUTHORIZED"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"
    UNPROCESSABLE_REQUEST = "UNPROCESSABLE_REQUEST"
    VALIDATION_ERROR = "VALIDATION_ERROR"


# --------------------------------------------------------------------------- checks

_INT32 = (-(2**31), 2**31 - 1)
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]", re.ASCII)

Check = Callable[[Any], "str | None"]


def _text(*, required: bool = False, blank: bool = True, pattern: str | None = None) -> Check:
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


def _flag(*, required: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None:
            return "is required" if required else None
        if not isinstance(value, bool):
            return f"must be true or false, got {type(value).__name__}"
        return None

    return check


def _int32(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"must be an integer, got {type(value).__name__}"
    if not _INT32[0] <= value <= _INT32[1]:
        return "must fit in 32 bits"
    return None


def _number(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return f"must be a number, got {type(value).__name__}"
    if isinstance(value, int) or (
        value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    ):
        return None
    return f"must be a finite number; got {value!r}"  # JSON has no NaN or Infinity


def _choice(enum_type: type[enum.Enum]) -> Check:
    allowed = ", ".join(m.value for m in enum_type)

    def check(value: Any) -> str | None:
        if value is None or isinstance(value, enum_type):
            return None
        return f"must be one of {allowed}; got {value!r}"

    return check


def _moment(value: Any) -> str | None:
    if value is None or isinstance(value, dt.datetime):
        return None
    return f"must be a datetime, got {type(value).__name__}"


def _clock(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.time) and not (value.second or value.microsecond or value.tzinfo):
        return None  # "HH:mm" carries it whole
    return f"must be a time of day in whole minutes, or an 'HH:mm' string; got {value!r}"


def _items(item_type: type[Any], *, required: bool = False) -> Check:
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


def _validate(model: object, checks: Mapping[str, Check]) -> None:
    problems = [
        FieldError(name, problem)
        for name, check in checks.items()
        if (problem := check(getattr(model, name))) is not None
    ]
    if problems:
        raise ValidationError(problems, model=type(model).__name__)


def _enum_or_raw(enum_type: type[E], value: Any) -> Any:
    """A known value becomes the member; anything else is kept for the check to report."""
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        try:
            return enum_type(value)
        except ValueError:
            return value
    return value


def _to_reminder_type(value: Any) -> Any:
    return _enum_or_raw(ReminderType, value)


def _to_source(value: Any) -> Any:
    return _enum_or_raw(CustomerSource, value)


def _to_status(value: Any) -> Any:
    return _enum_or_raw(CustomerStatus, value)


def _to_level(value: Any) -> Any:
    return _enum_or_raw(CustomerLevel, value)


def _to_clock(value: Any) -> Any:
    """An ``HH:mm`` string becomes a ``time``; anything else is kept for the check to report."""
    if isinstance(value, str) and _HH_MM.fullmatch(value):
        return dt.time(int(value[:2]), int(value[3:]))
    return value


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class _WireFormat:
    """``from_dict``/``to_dict`` in EnKash's wire format, shared by the request models."""

    __slots__ = ()

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Build from EnKash's wire JSON, reporting every problem in the tree with its path.

        Raises :class:`~enkash_async.errors.ValidationError`.
        """
        from enkash_async import _convert  # the wire format lives above this layer

        return _convert.request_from_wire(data, cls)

    def to_dict(self) -> dict[str, Any]:
        """This request as EnKash's wire JSON; unset optional fields are left out."""
        from enkash_async import _convert

        return _convert.to_wire(self)


# --------------------------------------------------------------------------- requests


@attrs.frozen(kw_only=True)
class ReminderCreate(_WireFormat):
    """A payment reminder to set up with a new customer.

    ``reminder_time`` is a ``time`` of whole minutes; an ``'HH:mm'`` string is read as one.
    """

    customer_reminder_id: str | None = None
    due_date_difference: int | None = None
    reminder_interval: int | None = None
    reminder_time: dt.time | None = attrs.field(default=None, converter=_to_clock)
    reminder_type: ReminderType | None = attrs.field(default=None, converter=_to_reminder_type)
    stage: str | None = None

    def __attrs_post_init__(self) -> None:
        _validate(self, _REMINDER_CHECKS)


_REMINDER_CHECKS: dict[str, Check] = {
    "customer_reminder_id": _text(),
    "due_date_difference": _int32,
    "reminder_interval": _int32,
    "reminder_time": _clock,
    "reminder_type": _choice(ReminderType),
    "stage": _text(),
}


@attrs.frozen(kw_only=True)
class KeyContactCreate(_WireFormat):
    """A key contact of a new customer; ``name``, ``legal_name`` and ``mobile`` are required."""

    name: str
    legal_name: str
    mobile: str
    deleted: bool = False
    email: str | None = None
    key_contact_person_id: str | None = None
    mail_enabled: bool | None = None
    sms_enabled: bool | None = None
    whatsapp_enabled: bool | None = None
    via: str | None = None

    def __attrs_post_init__(self) -> None:
        _validate(self, _KEY_CONTACT_CHECKS)


_KEY_CONTACT_CHECKS: dict[str, Check] = {
    "name": _text(required=True, blank=False),
    "legal_name": _text(required=True, blank=False),
    "mobile": _text(required=True, pattern="mobile"),
    "deleted": _flag(required=True),
    "email": _text(pattern="email"),
    "key_contact_person_id": _text(),
    "mail_enabled": _flag(),
    "sms_enabled": _flag(),
    "whatsapp_enabled": _flag(),
    "via": _text(),
}


@attrs.frozen(kw_only=True)
class CustomerCreate(_WireFormat):
    """A customer to create. ``legal_name`` and ``customer_key_contacts`` are required.

    Give every customer a ``unique_ref_no`` (your own system's id for it): the client
    then can tell whether a create whose reply was lost took effect, and retry safely.
    """

    legal_name: str
    customer_key_contacts: tuple[KeyContactCreate, ...] = attrs.field(converter=_as_tuple)
    account_number: str | None = None
    address: str | None = None
    company_id: str | None = None
    contact_number: str | None = None
    customer_company_id: str | None = None
    customer_reminders: tuple[ReminderCreate, ...] | None = attrs.field(
        default=None, converter=_as_tuple
    )
    external_source: bool | None = None
    ifsc: str | None = None
    pan_or_gstin: str | None = None
    pin_code: str | None = None
    source: CustomerSource | None = attrs.field(default=None, converter=_to_source)
    state: str | None = None
    unique_ref_no: str | None = None

    def __attrs_post_init__(self) -> None:
        _validate(self, _CUSTOMER_CHECKS)


_CUSTOMER_CHECKS: dict[str, Check] = {
    "legal_name": _text(required=True, blank=False),
    "customer_key_contacts": _items(KeyContactCreate, required=True),
    "account_number": _text(pattern="accountNumber"),
    "address": _text(),
    "company_id": _text(pattern="companyId"),
    "contact_number": _text(pattern="contactNumber"),
    "customer_company_id": _text(),
    "customer_reminders": _items(ReminderCreate),
    "external_source": _flag(),
    "ifsc": _text(pattern="ifsc"),
    "pan_or_gstin": _text(pattern="panOrGstin"),
    "pin_code": _text(pattern="pinCode"),
    "source": _choice(CustomerSource),
    "state": _text(),
    "unique_ref_no": _text(),
}


@attrs.frozen(kw_only=True)
class CustomerSearch(_WireFormat):
    """Filters for ``customers.search``; every field is optional and unset ones are not sent."""

    account_number: str | None = None
    assigned_agent: str | None = None
    balance_amount: Decimal | float | int | None = None
    company_id: str | None = None
    contact_number: str | None = None
    created_by_name: str | None = None
    created_on_from: dt.datetime | None = None
    created_on_to: dt.datetime | None = None
    customer_ids: tuple[str, ...] | None = attrs.field(default=None, converter=_as_tuple)
    customer_status: CustomerStatus | None = attrs.field(default=None, converter=_to_status)
    dso_from: int | None = None
    dso_to: int | None = None
    ifsc: str | None = None
    legal_name: str | None = None
    level: CustomerLevel | None = attrs.field(default=None, converter=_to_level)
    modified_by_name: str | None = None
    modified_on: dt.datetime | None = None
    pan_or_gstin: str | None = None
    parent_company_id: str | None = None
    select_all: bool | None = None
    unique_ref_no: str | None = None

    def __attrs_post_init__(self) -> None:
        _validate(self, _SEARCH_CHECKS)


_SEARCH_CHECKS: dict[str, Check] = {
    "account_number": _text(),
    "assigned_agent": _text(),
    "balance_amount": _number,
    "company_id": _text(),
    "contact_number": _text(),
    "created_by_name": _text(),
    "created_on_from": _moment,
    "created_on_to": _moment,
    "customer_ids": _items(str),
    "customer_status": _choice(CustomerStatus),
    "dso_from": _int32,
    "dso_to": _int32,
    "ifsc": _text(),
    "legal_name": _text(),
    "level": _choice(CustomerLevel),
    "modified_by_name": _text(),
    "modified_on": _moment,
    "pan_or_gstin": _text(),
    "parent_company_id": _text(),
    "select_all": _flag(),
    "unique_ref_no": _text(),
}


# --------------------------------------------------------------------------- replies


class _Record:
    """``to_dict`` for reply records: wire names by default, Python names on request."""

    __slots__ = ()

    def to_dict(self, *, wire: bool = True) -> dict[str, Any]:
        """This record as a dict: EnKash's wire names and JSON values, or (``wire=False``)
        Python attribute names and Python values (datetimes, enums, nested dicts)."""
        from enkash_async import _convert

        return _convert.to_wire(self) if wire else _convert.to_python_dict(self)


@attrs.define(kw_only=True)
class KeyContact(_Record):
    """A customer's key contact as EnKash returns it."""

    created_by: str | None = None
    created_on: dt.datetime | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    deleted: bool | None = None
    email: str | None = None
    key_contact_person_id: str | None = None
    mail_enabled: bool | None = None
    mobile: str | None = None
    modified_by: str | None = None
    modified_on: dt.datetime | None = None
    name: str | None = None
    sms_enabled: bool | None = None
    whatsapp_enabled: bool | None = None


@attrs.define(kw_only=True)
class Reminder(_Record):
    """A customer's reminder configuration as EnKash returns it.

    ``reminder_time`` is a ``time`` when EnKash sends ``HH:mm``; otherwise the raw value
    as a string. ``reminder_type`` is a string when EnKash sends a value not yet known.
    """

    customer_id: str | None = None
    customer_reminder_id: str | None = None
    due_date_difference: int | None = None
    reminder_interval: int | None = None
    reminder_time: dt.time | str | None = None
    reminder_type: ReminderType | str | None = None
    stage: str | None = None


@attrs.define(kw_only=True)
class Customer(_Record):
    """A customer as EnKash returns it (``CustomerResponse``)."""

    customer_id: str | None = None
    id: int | None = None
    legal_name: str | None = None
    unique_ref_no: str | None = None
    account_number: str | None = None
    active: bool | None = None
    address: str | None = None
    assigned_agent: str | None = None
    bank_name: str | None = None
    branch_codes: list[str] = attrs.Factory(list)
    company_id: str | None = None
    contact_email: str | None = None
    contact_number: str | None = None
    created_by: str | None = None
    created_by_name: str | None = None
    created_on: dt.datetime | None = None
    customer_key_contacts: list[KeyContact] = attrs.Factory(list)
    customer_logo: str | None = None
    customer_reminders: list[Reminder] = attrs.Factory(list)
    dso_median: int | None = None
    ifsc: str | None = None
    modified_by: str | None = None
    modified_by_name: str | None = None
    modified_on: dt.datetime | None = None
    net_amount: Decimal | None = None
    pan_or_gstin: str | None = None
    parent_company_id: str | None = None
    parent_legal_name: str | None = None
    pin_code: str | None = None
    state: str | None = None
    warnings: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class Page(Generic[T]):
    """One page of search results.

    ``offset`` is where it starts, ``records_count`` the total EnKash reports for the
    filter, ``next_offset`` where the next page starts (None when this is the last).
    """

    items: Sequence[T]
    offset: int
    limit: int
    records_count: int | None
    next_offset: int | None
    count_changed: bool = False

    def __len__(self) -> int:
        return len(self.items)

    def to_rows(self) -> list[dict[str, Any]]:
        """The items as flat dicts (nested lists joined or counted), ready for pandas."""
        from enkash_async import _convert

        return [_convert.to_row(item) for item in self.items]


@attrs.define(kw_only=True)
class CreateResult:
    """The outcome of one input of ``customers.create_many``.

    Exactly one of ``customer`` and ``error`` is set. ``attempts`` counts the requests
    sent for it; ``reconciled`` is True when the customer was found by ``unique_ref_no``
    after an ambiguous failure instead of being created by this call's reply.
    ``elapsed`` is the seconds from start to outcome, retries and waits included.
    """

    input: CustomerCreate
    index: int
    customer: Customer | None = None
    error: EnkashError | None = None
    attempts: int = 0
    reconciled: bool = False
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the customer exists in EnKash."""
        return self.customer is not None
