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
import re
import typing
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs

from enkash_async import _wire
from enkash_async._csv import csv_cell_types
from enkash_async._rows import csv_columns, to_python_dict, to_row
from enkash_async._unset import UNSET, UnsetType
from enkash_async._validation import (
    CHECK,
    Check,
    choice,
    clock,
    flag,
    int32,
    items,
    moment,
    number,
    text,
    validate,
)
from enkash_async.errors import EnkashError

__all__ = [
    "UNSET",
    "CreateResult",
    "Customer",
    "CustomerCreate",
    "CustomerLevel",
    "CustomerSearch",
    "CustomerSource",
    "CustomerStatus",
    "CustomerUpdate",
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

_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]", re.ASCII)


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
        validate(self)

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

    customer_reminder_id: str | None = _field(text(), default=None)
    due_date_difference: int | None = _field(int32, default=None)
    reminder_interval: int | None = _field(int32, default=None)
    reminder_time: dt.time | None = _field(clock, default=None, converter=_to_clock)
    reminder_type: ReminderType | None = _field(
        choice(ReminderType), default=None, converter=_to_reminder_type
    )
    stage: str | None = _field(text(), default=None)


@attrs.frozen(kw_only=True)
class KeyContactCreate(_Request):
    """A key contact of a new customer; ``name``, ``legal_name`` and ``mobile`` are required."""

    name: str = _field(text(required=True, blank=False))
    legal_name: str = _field(text(required=True, blank=False))
    mobile: str = _field(text(required=True, pattern="mobile"))
    # EnKash requires the key; sent as false unless set.
    deleted: bool = _field(flag(required=True), default=False, required_on_wire=True)
    email: str | None = _field(text(pattern="email"), default=None)
    key_contact_person_id: str | None = _field(text(), default=None)
    mail_enabled: bool | None = _field(flag(), default=None, wire="mail_enabled")
    sms_enabled: bool | None = _field(flag(), default=None, wire="sms_enabled")
    whatsapp_enabled: bool | None = _field(flag(), default=None, wire="whatsapp_enabled")
    via: str | None = _field(text(), default=None)


@attrs.frozen(kw_only=True)
class CustomerCreate(_Request):
    """A customer to create. ``legal_name`` and ``customer_key_contacts`` are required.

    Give every customer a ``unique_ref_no`` (your own system's id for it): the client
    then can tell whether a create whose reply was lost took effect, and retry safely.
    """

    legal_name: str = _field(text(required=True, blank=False))
    customer_key_contacts: tuple[KeyContactCreate, ...] = _field(
        items(KeyContactCreate, required=True), converter=_as_tuple
    )
    account_number: str | None = _field(text(pattern="accountNumber"), default=None)
    address: str | None = _field(text(), default=None)
    company_id: str | None = _field(text(pattern="companyId"), default=None)
    contact_number: str | None = _field(text(pattern="contactNumber"), default=None)
    customer_company_id: str | None = _field(text(), default=None)
    customer_reminders: tuple[ReminderCreate, ...] | None = _field(
        items(ReminderCreate), default=None, converter=_as_tuple
    )
    external_source: bool | None = _field(flag(), default=None)
    ifsc: str | None = _field(text(pattern="ifsc"), default=None)
    pan_or_gstin: str | None = _field(text(pattern="panOrGstin"), default=None)
    pin_code: str | None = _field(text(pattern="pinCode"), default=None)
    source: CustomerSource | None = _field(
        choice(CustomerSource), default=None, converter=_to_source
    )
    state: str | None = _field(text(), default=None)
    unique_ref_no: str | None = _field(text(), default=None)


@attrs.frozen(kw_only=True, repr=False)
class CustomerUpdate(_Request):
    """The changes of one PATCH of a customer (EnKash's ``updateCustomer``).

    Every field has three states, as EnKash's JsonNullable fields do: :data:`UNSET` (the
    default) is left out of the JSON and EnKash keeps the value; ``None`` is sent as
    ``null`` and clears it; a value is checked with the create page's rules and sent.
    ``legal_name`` and ``customer_key_contacts``, which a customer must have, cannot be
    cleared. A list (``customer_key_contacts``, ``customer_reminders``, ``branch_codes``)
    is sent whole: EnKash's page does not say whether a list replaces or merges, so the
    safe reading is to send the complete list the customer should have.

    Raises :class:`~enkash_async.errors.ValidationError` naming every bad field.
    """

    account_number: str | UnsetType | None = _field(text(pattern="accountNumber"), default=UNSET)
    address: str | UnsetType | None = _field(text(), default=UNSET)
    assigned_agent: str | UnsetType | None = _field(text(), default=UNSET)
    branch_codes: tuple[str, ...] | UnsetType | None = _field(
        items(str), default=UNSET, converter=_as_tuple
    )
    contact_number: str | UnsetType | None = _field(text(pattern="contactNumber"), default=UNSET)
    customer_key_contacts: tuple[KeyContactCreate, ...] | UnsetType = _field(
        items(KeyContactCreate, required=True), default=UNSET, converter=_as_tuple
    )
    customer_reminders: tuple[ReminderCreate, ...] | UnsetType | None = _field(
        items(ReminderCreate), default=UNSET, converter=_as_tuple
    )
    ifsc: str | UnsetType | None = _field(text(pattern="ifsc"), default=UNSET)
    legal_name: str | UnsetType = _field(text(required=True, blank=False), default=UNSET)
    pan_or_gstin: str | UnsetType | None = _field(text(pattern="panOrGstin"), default=UNSET)
    pin_code: str | UnsetType | None = _field(text(pattern="pinCode"), default=UNSET)
    state: str | UnsetType | None = _field(text(), default=UNSET)
    unique_ref_no: str | UnsetType | None = _field(text(blank=False), default=UNSET)

    def changed_fields(self) -> tuple[str, ...]:
        """The names of the fields this update sends (those not :data:`UNSET`)."""
        return tuple(a.name for a in attrs.fields(type(self)) if getattr(self, a.name) is not UNSET)

    def __bool__(self) -> bool:
        return bool(self.changed_fields())

    def __repr__(self) -> str:
        sent = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.changed_fields())
        return f"CustomerUpdate({sent})"


@attrs.frozen(kw_only=True)
class CustomerSearch(_Request):
    """Filters for ``customers.search``; every field is optional and unset ones are not sent."""

    account_number: str | None = _field(text(), default=None)
    assigned_agent: str | None = _field(text(), default=None)
    balance_amount: Decimal | float | int | None = _field(number, default=None)
    company_id: str | None = _field(text(), default=None)
    contact_number: str | None = _field(text(), default=None)
    created_by_name: str | None = _field(text(), default=None)
    created_on_from: dt.datetime | None = _field(moment, default=None)
    created_on_to: dt.datetime | None = _field(moment, default=None)
    customer_ids: tuple[str, ...] | None = _field(items(str), default=None, converter=_as_tuple)
    customer_status: CustomerStatus | None = _field(
        choice(CustomerStatus), default=None, converter=_to_status
    )
    dso_from: int | None = _field(int32, default=None)
    dso_to: int | None = _field(int32, default=None)
    ifsc: str | None = _field(text(), default=None)
    legal_name: str | None = _field(text(), default=None)
    level: CustomerLevel | None = _field(choice(CustomerLevel), default=None, converter=_to_level)
    modified_by_name: str | None = _field(text(), default=None)
    modified_on: dt.datetime | None = _field(moment, default=None)
    pan_or_gstin: str | None = _field(text(), default=None)
    parent_company_id: str | None = _field(text(), default=None)
    select_all: bool | None = _field(flag(), default=None)
    unique_ref_no: str | None = _field(text(), default=None)


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
    filter, ``next_offset`` where the next page starts (None when this is the last),
    ``request_id`` the ``X-Request-Id`` of the request that fetched it.
    """

    items: Sequence[T]
    offset: int
    limit: int
    records_count: int | None
    next_offset: int | None
    count_changed: bool = False
    request_id: str | None = None

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
    ``request_id`` is the ``X-Request-Id`` of the request whose reply gave ``customer``
    (the create's, or the reconciling lookup's), for EnKash's support.
    """

    input: CustomerCreate
    index: int
    customer: Customer | None = None
    error: EnkashError | None = None
    attempts: int = 0
    reconciled: bool = False
    elapsed: float = 0.0
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the customer exists in EnKash."""
        return self.customer is not None
