"""Compatibility names for code not yet moved to :mod:`enkash_async._wire` and the models.

Binds the generic wire functions to the customer models; new code imports from
``enkash_async._wire`` and ``enkash_async.models`` directly.
"""

from __future__ import annotations

from typing import Any

import attrs

from enkash_async import _wire
from enkash_async._wire import record_key, request_from_wire, to_wire
from enkash_async.models import (
    Customer,
    CustomerCreate,
    CustomerSearch,
    KeyContact,
    KeyContactCreate,
    Reminder,
    ReminderCreate,
    to_python_dict,
    to_row,
)

__all__ = [
    "customer_from_record",
    "customer_from_wire",
    "page_from_wire",
    "page_records_from_wire",
    "record_key",
    "request_from_wire",
    "to_python_dict",
    "to_row",
    "to_wire",
    "wire_name",
]

_MODELS = (Customer, KeyContact, Reminder, CustomerCreate, KeyContactCreate, ReminderCreate)
_WIRE_NAMES = {
    a.name: _wire.wire_name(a) for model in (*_MODELS, CustomerSearch) for a in attrs.fields(model)
}

#: Reads one customer record: a raw view from a search reply, or a mapping.
customer_from_record = _wire.record_reader(Customer, "CustomerResponse")


def wire_name(attribute: str) -> str:
    """EnKash's JSON key for the Python attribute name of any model field."""
    return _WIRE_NAMES.get(attribute) or _wire.camel_case(attribute)


def customer_from_wire(data: Any) -> Customer:
    """A ``Customer`` from a ``CustomerResponse`` object.

    Raises :class:`~enkash_async.errors.UnexpectedResponseError` when the reply has the
    wrong shape, naming the field.
    """
    return _wire.record_from_wire(data, Customer, "CustomerResponse")


def page_records_from_wire(payload: Any) -> tuple[list[Any], int | None]:
    """The raw customer records and ``recordsCount`` of a page, shape-checked only.

    Raises :class:`~enkash_async.errors.UnexpectedResponseError` for the wrong shape.
    """
    return _wire.page_records_from_wire(payload, Customer)


def page_from_wire(payload: Any) -> tuple[list[Customer], int | None]:
    """The customers and ``recordsCount`` of a ``GenericPaginationResponse«CustomerResponse»``.

    Raises :class:`~enkash_async.errors.UnexpectedResponseError` for the wrong shape.
    """
    records, records_count = page_records_from_wire(payload)
    return [customer_from_record(record) for record in records], records_count
