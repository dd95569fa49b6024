"""Customer replies read through :mod:`enkash_async._wire`, as the client reads them."""

from __future__ import annotations

from typing import Any

from enkash_async import _wire
from enkash_async.models import Customer

#: One customer record from a raw search-reply view or a mapping of wire keys.
customer_from_record = _wire.record_reader(Customer, "CustomerResponse")


def customer_from_wire(data: Any) -> Customer:
    """A ``Customer`` from a ``CustomerResponse`` object (liberal read)."""
    return _wire.record_from_wire(data, Customer, "CustomerResponse")


def page_from_wire(payload: Any) -> tuple[list[Customer], int | None]:
    """The customers and ``recordsCount`` of a search page."""
    records, records_count = _wire.page_records_from_wire(payload, Customer)
    return [customer_from_record(record) for record in records], records_count
