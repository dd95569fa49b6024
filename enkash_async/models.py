"""EnKash's customer domain as attrs classes.

Request models (``CustomerCreate``, ``KeyContactCreate``, ``ReminderCreate``,
``CustomerSearch``) are strict: each checks its own fields when built and raises one
:class:`~enkash_async.errors.ValidationError` naming every bad field. Reply models
(``Customer``, ``KeyContact``, ``Reminder``) are liberal records with no validators:
whatever EnKash sends is read, and values outside a known enum stay plain strings.

Each field is declared once: its check (request models) and any irregular wire name
are in its ``attrs.field`` metadata, and validation, wire names and CSV columns are
derived from ``attrs.fields``. This module knows nothing of HTTP; ``from_dict`` and
``to_dict`` use the wire format in :mod:`enkash_async._wire`.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import types
import typing
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final, Generic, TypeVar

import attrs

from enkash_async import _wire
from enkash_async._validation import Check, pan_or_gstin_problem, pattern_problem
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
    "csv_cell_types",
    "csv_columns",
    "to_python_dict",
    "to_row",
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

#: Metadata key of a request field's check.
CHECK: Final = "enkash_async.check"


def _field(
    check: Check,
    *,
    default: Any = attrs.NOTHING,
    converter: Any = None,
    wire: str | None = None,
    required_on_wire: bool = False,
) -> Any:
    """A request field: its check and, if irregular, its wire name, declared in one place."""
    metadata = {CHECK: check, **_wire.wire_field(wire=wire, required=required_on_wire)}
    return attrs.field(default=default, converter=converter, metadata=metadata)


def _reply(wire: str) -> Any:
    """A reply field with an irregular wire name."""
    return attrs.field(default=None, metadata=_wire.wire_field(wire=wire))


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


_CHECKS: dict[type[Any], tuple[tuple[str, Check], ...]] = {}


def _checks(model: type[Any]) -> tuple[tuple[str, Check], ...]:
    found = _CHECKS.get(model)
    if found is None:
        found = _CHECKS[model] = tuple(
            (a.name, a.metadata[CHECK]) for a in attrs.fields(model) if CHECK in a.metadata
        )
    return found


def _validate(model: object) -> None:
    problems = [
        FieldError(name, problem)
        for name, check in _checks(type(model))
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


class _Request:
    """Validation from each field's check, and ``from_dict``/``to_dict`` in EnKash's wire
    format, shared by the request models."""

    __slots__ = ()

    def __attrs_post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_dict(cls: type[T], data: typing.Mapping[str, Any]) -> T:
        """Build from EnKash's wire JSON, reporting every problem in the tree with its path.

        Raises :class:`~enkash_async.errors.ValidationError`.
        """
        return _wire.request_from_wire(data, cls)

    def to_dict(self) -> dict[str, Any]:
        """This request as EnKash's wire JSON; unset optional fields are left out."""
        return _wire.to_wire(self)


# --------------------------------------------------------------------------- requests


@attrs.frozen(kw_only=True)
class ReminderCreate(_Request):
    """A payment reminder to set up with a new customer.

    ``reminder_time`` is a ``time`` of whole minutes; an ``'HH:mm'`` string is read as one.
    """

    customer_reminder_id: str | None = _field(_text(), default=None)
    due_date_difference: int | None = _field(_int32, default=None)
    reminder_interval: int | None = _field(_int32, default=None)
    reminder_time: dt.time | None = _field(_clock, default=None, converter=_to_clock)
    reminder_type: ReminderType | None = _field(
        _choice(ReminderType), default=None, converter=_to_reminder_type
    )
    stage: str | None = _field(_text(), default=None)


@attrs.frozen(kw_only=True)
class KeyContactCreate(_Request):
    """A key contact of a new customer; ``name``, ``legal_name`` and ``mobile`` are required."""

    name: str = _field(_text(required=True, blank=False))
    legal_name: str = _field(_text(required=True, blank=False))
    mobile: str = _field(_text(required=True, pattern="mobile"))
    # EnKash requires the key; sent as false unless set.
    deleted: bool = _field(_flag(required=True), default=False, required_on_wire=True)
    email: str | None = _field(_text(pattern="email"), default=None)
    key_contact_person_id: str | None = _field(_text(), default=None)
    mail_enabled: bool | None = _field(_flag(), default=None, wire="mail_enabled")
    sms_enabled: bool | None = _field(_flag(), default=None, wire="sms_enabled")
    whatsapp_enabled: bool | None = _field(_flag(), default=None, wire="whatsapp_enabled")
    via: str | None = _field(_text(), default=None)


@attrs.frozen(kw_only=True)
class CustomerCreate(_Request):
    """A customer to create. ``legal_name`` and ``customer_key_contacts`` are required.

    Give every customer a ``unique_ref_no`` (your own system's id for it): the client
    then can tell whether a create whose reply was lost took effect, and retry safely.
    """

    legal_name: str = _field(_text(required=True, blank=False))
    customer_key_contacts: tuple[KeyContactCreate, ...] = _field(
        _items(KeyContactCreate, required=True), converter=_as_tuple
    )
    account_number: str | None = _field(_text(pattern="accountNumber"), default=None)
    address: str | None = _field(_text(), default=None)
    company_id: str | None = _field(_text(pattern="companyId"), default=None)
    contact_number: str | None = _field(_text(pattern="contactNumber"), default=None)
    customer_company_id: str | None = _field(_text(), default=None)
    customer_reminders: tuple[ReminderCreate, ...] | None = _field(
        _items(ReminderCreate), default=None, converter=_as_tuple
    )
    external_source: bool | None = _field(_flag(), default=None)
    ifsc: str | None = _field(_text(pattern="ifsc"), default=None)
    pan_or_gstin: str | None = _field(_text(pattern="panOrGstin"), default=None)
    pin_code: str | None = _field(_text(pattern="pinCode"), default=None)
    source: CustomerSource | None = _field(
        _choice(CustomerSource), default=None, converter=_to_source
    )
    state: str | None = _field(_text(), default=None)
    unique_ref_no: str | None = _field(_text(), default=None)


@attrs.frozen(kw_only=True)
class CustomerSearch(_Request):
    """Filters for ``customers.search``; every field is optional and unset ones are not sent."""

    account_number: str | None = _field(_text(), default=None)
    assigned_agent: str | None = _field(_text(), default=None)
    balance_amount: Decimal | float | int | None = _field(_number, default=None)
    company_id: str | None = _field(_text(), default=None)
    contact_number: str | None = _field(_text(), default=None)
    created_by_name: str | None = _field(_text(), default=None)
    created_on_from: dt.datetime | None = _field(_moment, default=None)
    created_on_to: dt.datetime | None = _field(_moment, default=None)
    customer_ids: tuple[str, ...] | None = _field(_items(str), default=None, converter=_as_tuple)
    customer_status: CustomerStatus | None = _field(
        _choice(CustomerStatus), default=None, converter=_to_status
    )
    dso_from: int | None = _field(_int32, default=None)
    dso_to: int | None = _field(_int32, default=None)
    ifsc: str | None = _field(_text(), default=None)
    legal_name: str | None = _field(_text(), default=None)
    level: CustomerLevel | None = _field(_choice(CustomerLevel), default=None, converter=_to_level)
    modified_by_name: str | None = _field(_text(), default=None)
    modified_on: dt.datetime | None = _field(_moment, default=None)
    pan_or_gstin: str | None = _field(_text(), default=None)
    parent_company_id: str | None = _field(_text(), default=None)
    select_all: bool | None = _field(_flag(), default=None)
    unique_ref_no: str | None = _field(_text(), default=None)


# --------------------------------------------------------------------------- replies


class _Record:
    """``to_dict`` for reply records: wire names by default, Python names on request."""

    __slots__ = ()

    def to_dict(self, *, wire: bool = True) -> dict[str, Any]:
        """This record as a dict: EnKash's wire names and JSON values, or (``wire=False``)
        Python attribute names and Python values (datetimes, enums, nested dicts)."""
        return _wire.to_wire(self) if wire else to_python_dict(self)


@attrs.define(kw_only=True)
class KeyContact(_Record):
    """A customer's key contact as EnKash returns it."""

    created_by: str | None = None
    created_on: dt.datetime | None = None
    customer_id: str | None = None
    customer_name: str | None = None
    # EnKash documents this one flag as a string ("false").
    deleted: bool | None = attrs.field(default=None, metadata=_wire.wire_field(text_flag=True))
    email: str | None = None
    key_contact_person_id: str | None = None
    mail_enabled: bool | None = _reply("mail_enabled")
    mobile: str | None = None
    modified_by: str | None = None
    modified_on: dt.datetime | None = None
    name: str | None = None
    sms_enabled: bool | None = _reply("sms_enabled")
    whatsapp_enabled: bool | None = _reply("whatsapp_enabled")


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
        return [to_row(item) for item in self.items]


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


# --------------------------------------------------------------------------- rows


def to_python_dict(model: Any) -> dict[str, Any]:
    """A model as a dict of Python names and values, nested records as dicts."""
    return attrs.asdict(model, recurse=True)


# The first key contact's columns in a customer's row.
_CONTACT_COLUMNS: Final = ("name", "mobile", "email")


def csv_columns(record_type: type[Any]) -> list[str]:
    """The columns :func:`to_row` gives every record of ``record_type``, in order."""
    record_lists = _record_lists(record_type)
    columns = [
        f"{a.name}_count" if a.name in record_lists else a.name for a in attrs.fields(record_type)
    ]
    if "customer_key_contacts" in record_lists:
        columns += [f"key_contact_{name}" for name in _CONTACT_COLUMNS]
    return columns


def to_row(model: Any) -> dict[str, Any]:
    """A record as one flat row: scalars as they are, lists of strings joined, lists of
    records as a ``<name>_count``, and the first key contact's name, mobile and email as
    ``key_contact_*``. Every record of a type gets the same columns (:func:`csv_columns`),
    for tabular tools."""
    record_lists = _record_lists(type(model))
    row: dict[str, Any] = {}
    for field in attrs.fields(type(model)):
        value = getattr(model, field.name)
        if field.name in record_lists:
            row[f"{field.name}_count"] = len(value) if value else 0
        elif isinstance(value, list):
            row[field.name] = ", ".join(str(v) for v in value)
        elif isinstance(value, enum.Enum):
            row[field.name] = value.value
        else:
            row[field.name] = value
    if "customer_key_contacts" in record_lists:
        contacts = model.customer_key_contacts
        first = contacts[0] if contacts else None
        for name in _CONTACT_COLUMNS:
            row[f"key_contact_{name}"] = getattr(first, name, None)
    return row


_RECORD_LISTS: dict[type[Any], frozenset[str]] = {}


def _record_lists(record_type: type[Any]) -> frozenset[str]:
    """The attributes of ``record_type`` that hold lists of records, by their declared type."""
    found = _RECORD_LISTS.get(record_type)
    if found is None:
        hints = typing.get_type_hints(record_type)
        found = frozenset(
            a.name
            for a in attrs.fields(record_type)
            if typing.get_origin(hints[a.name]) is list
            and any(attrs.has(arg) for arg in typing.get_args(hints[a.name]))
        )
        _RECORD_LISTS[record_type] = found
    return found


def csv_cell_types(model: type[Any]) -> dict[str, type[Any]]:
    """Each wire key of a request model (nested request models included) and the scalar
    Python type its CSV cell holds (``str``, ``bool``, ``int``, ...), for reading imports."""
    cells: dict[str, type[Any]] = {}
    hints = typing.get_type_hints(model)
    for a in attrs.fields(model):
        for member in _wire_members(hints[a.name]):
            if typing.get_origin(member) is tuple:
                (item, *_) = typing.get_args(member)
                if attrs.has(item):
                    cells.update(csv_cell_types(item))
            elif member is not type(None) and isinstance(member, type):
                cells.setdefault(_wire.wire_name(a), member)
    return cells


def _wire_members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)
