"""The fake server's customer store: wire dicts, cached JSON, ordering and filtering.

Search semantics (EnKash documents the filter fields, not their meaning; these are the
fake server's):

* ``null``, ``""`` and an empty ``customerIds`` list mean "no condition".
* ``legalName``, ``assignedAgent``, ``createdByName``, ``modifiedByName``: case-insensitive
  substring. ``ifsc``, ``panOrGstin``: case-insensitive equality. ``accountNumber``,
  ``companyId``, ``contactNumber``, ``parentCompanyId``, ``uniqueRefNo``: equality.
* ``customerIds``: the customer's ``customerId`` is in the list.
* ``customerStatus``: ACTIVE (``active`` true), INACTIVE (false), ALL.
* ``balanceAmount``: ``netAmount`` is at least this much.
* ``createdOnFrom``/``createdOnTo``: ``createdOn`` in the inclusive range.
* ``modifiedOn``: ``modifiedOn`` falls on the same UTC calendar day.
* ``dsoFrom``/``dsoTo``: ``dsoMedian`` in the inclusive range.
* ``level``: :func:`~enkash_async.testing.level_of` of ``dsoMedian``.
* ``selectAll``: accepted and ignored.

Order: ``orderBy`` field, ties broken by ascending ``id``; nulls sort last in ASC and
first in DESC (as in PostgreSQL).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from enkash_async._fast import paused_gc

from ._data import iso_utc, level_of
from ._envelope import dumps
from ._validate import Paging, parse_datetime

__all__ = ["Record", "Store", "compile_filter"]

Predicate = Callable[[Mapping[str, Any]], bool]

# How many filtered result lists to keep, so paging through one filter scans once.
_RESULT_CACHE_SIZE: Final = 16

_EXACT: Final = ("accountNumber", "companyId", "contactNumber", "parentCompanyId", "uniqueRefNo")
_EXACT_ANY_CASE: Final = ("ifsc", "panOrGstin")
_SUBSTRING: Final = ("legalName", "assignedAgent", "createdByName", "modifiedByName")


class Record:
    """One stored customer: its ``CustomerResponse`` wire dict and, once asked, its JSON."""

    __slots__ = ("_body", "wire")

    def __init__(self, wire: dict[str, Any]) -> None:
        self.wire = wire
        self._body: bytes | None = None

    @property
    def body(self) -> bytes:
        """The wire dict as JSON, encoded on first use and kept (seeding stays fast)."""
        if self._body is None:
            self._body = dumps(self.wire)
        return self._body


def _equals(field: str, wanted: Any) -> Predicate:
    return lambda wire: wire[field] == wanted


def _equals_any_case(field: str, wanted: str) -> Predicate:
    wanted = wanted.casefold()
    return lambda wire: (wire[field] or "").casefold() == wanted


def _contains(field: str, wanted: str) -> Predicate:
    wanted = wanted.casefold()
    return lambda wire: wanted in (wire[field] or "").casefold()


def _second(moment: datetime, *, up: bool) -> str:
    # Reply timestamps have whole seconds; round a bound inwards so the range stays exact.
    epoch = moment.timestamp()
    return iso_utc(math.ceil(epoch) if up else math.floor(epoch))


def _predicates(body: Mapping[str, Any]) -> list[Predicate]:
    given = {name: value for name, value in body.items() if value not in (None, "", [])}
    tests: list[Predicate] = []
    for field in _EXACT:
        if field in given:
            tests.append(_equals(field, given[field]))
    for field in _EXACT_ANY_CASE:
        if field in given:
            tests.append(_equals_any_case(field, given[field]))
    for field in _SUBSTRING:
        if field in given:
            tests.append(_contains(field, given[field]))
    if "customerIds" in given:
        ids = frozenset(given["customerIds"])
        tests.append(lambda wire: wire["customerId"] in ids)
    status = given.get("customerStatus")
    if status in ("ACTIVE", "INACTIVE"):
        active = status == "ACTIVE"
        tests.append(lambda wire: wire["active"] is active)
    if "balanceAmount" in given:
        floor = given["balanceAmount"]
        tests.append(lambda wire: wire["netAmount"] is not None and wire["netAmount"] >= floor)
    if "createdOnFrom" in given:
        start = _second(_moment(given["createdOnFrom"]), up=True)
        tests.append(lambda wire: wire["createdOn"] >= start)
    if "createdOnTo" in given:
        end = _second(_moment(given["createdOnTo"]), up=False)
        tests.append(lambda wire: wire["createdOn"] <= end)
    if "modifiedOn" in given:
        day = _moment(given["modifiedOn"]).strftime("%Y-%m-%d")
        tests.append(lambda wire: wire["modifiedOn"][:10] == day)
    if "dsoFrom" in given:
        low = given["dsoFrom"]
        tests.append(lambda wire: wire["dsoMedian"] is not None and wire["dsoMedian"] >= low)
    if "dsoTo" in given:
        high = given["dsoTo"]
        tests.append(lambda wire: wire["dsoMedian"] is not None and wire["dsoMedian"] <= high)
    if "level" in given:
        level = given["level"]
        tests.append(lambda wire: level_of(wire["dsoMedian"]) == level)
    return tests


def _moment(text: str) -> datetime:
    moment = parse_datetime(text)
    if moment is None:  # the filter was validated first, so this is a bug
        raise ValueError(f"not a date-time: {text!r}")
    return moment


def compile_filter(body: Mapping[str, Any]) -> Predicate | None:
    """A test of a customer wire dict for a (validated) filter, or None if it has none."""
    tests = _predicates(body)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]

    def matches(wire: Mapping[str, Any]) -> bool:
        return all(test(wire) for test in tests)

    return matches


def _record_id(record: Record) -> int:
    id_: int = record.wire["id"]
    return id_


def _sort_key(field: str) -> Callable[[Record], tuple[bool, Any]]:
    # (is null, value): nulls after every value, and two nulls compare equal.
    return lambda record: (record.wire[field] is None, record.wire[field])


class Store:
    """Customers in ``id`` order, with sorted views and filter results cached until a write."""

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._by_ref: dict[str, list[Record]] = {}
        self._by_customer_id: dict[str, Record] = {}
        self._orders: dict[tuple[str, bool], list[Record]] = {}
        self._results: OrderedDict[tuple[str, str, bool], list[Record]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> Sequence[Record]:
        """Every record, by ascending ``id`` (do not modify)."""
        return self._records

    @property
    def next_id(self) -> int:
        """The ``id`` the next stored customer gets."""
        return self._records[-1].wire["id"] + 1 if self._records else 1

    def add(self, wires: Iterable[dict[str, Any]]) -> None:
        """Store customers (their ``id`` must exceed every stored one)."""
        for wire in wires:
            record = Record(wire)
            self._records.append(record)
            self._by_customer_id[wire["customerId"]] = record
            if wire["uniqueRefNo"] is not None:
                self._by_ref.setdefault(wire["uniqueRefNo"], []).append(record)
        self._orders.clear()
        self._results.clear()

    def replace(self, record: Record, wire: dict[str, Any]) -> None:
        """Store ``wire`` in ``record``'s place (same ``id`` and ``customerId``)."""
        # By id, not list.index: a PATCH of a million customers' store stays O(log n).
        index = bisect_left(self._records, record.wire["id"], key=_record_id)
        if index == len(self._records) or self._records[index] is not record:
            index = self._records.index(record)  # ValueError: not stored
        new = Record(wire)
        self._records[index] = new
        self._by_customer_id[wire["customerId"]] = new
        self._unindex_ref(record)
        if wire.get("uniqueRefNo") is not None:
            self._by_ref.setdefault(wire["uniqueRefNo"], []).append(new)
        self._orders.clear()
        self._results.clear()

    def remove(self, record: Record) -> None:
        """Forget ``record``: it is no longer found by id, reference or search."""
        self._records.remove(record)
        self._by_customer_id.pop(record.wire["customerId"], None)
        self._unindex_ref(record)
        self._orders.clear()
        self._results.clear()

    def _unindex_ref(self, record: Record) -> None:
        ref = record.wire.get("uniqueRefNo")
        if ref is None:
            return
        same = self._by_ref.get(ref, [])
        if record in same:
            same.remove(record)
            if not same:
                del self._by_ref[ref]

    def by_unique_ref(self, unique_ref_no: str) -> list[Record]:
        """Every record with this ``uniqueRefNo`` (EnKash does not keep them unique)."""
        return list(self._by_ref.get(unique_ref_no, ()))

    def by_customer_id(self, customer_id: str) -> Record | None:
        """The record with this ``customerId``, if any."""
        return self._by_customer_id.get(customer_id)

    def _ordered(self, order_by: str, descending: bool) -> list[Record]:
        if order_by == "id" and not descending:
            return self._records
        key = (order_by, descending)
        ordered = self._orders.get(key)
        if ordered is None:
            if order_by == "id":
                ordered = self._records[::-1]
            else:
                # The records are in id order and sorted() is stable even with reverse=True,
                # so ties keep ascending ids in both directions.
                with paused_gc():  # 100k key tuples would set off full collections
                    ordered = sorted(self._records, key=_sort_key(order_by), reverse=descending)
            self._orders[key] = ordered
        return ordered

    def _by_ids(self, ids: Iterable[str], order_by: str, descending: bool) -> list[Record]:
        """The records of ``ids`` in the order :meth:`_ordered` gives them."""
        found = (self._by_customer_id.get(customer_id) for customer_id in ids)
        records = sorted(dict.fromkeys(r for r in found if r is not None), key=_record_id)
        if order_by == "id":
            return records[::-1] if descending else records
        # Stable from id order, as _ordered's sort: ties keep ascending ids.
        return sorted(records, key=_sort_key(order_by), reverse=descending)

    def search(self, body: Mapping[str, Any], paging: Paging) -> tuple[Sequence[Record], int]:
        """One page of the customers matching ``body``, and how many match in all."""
        predicate = compile_filter(body)
        ids = body.get("customerIds")
        if ids and predicate is not None:
            # A read by ids (a sync's batch of 100) looks them up, not a pass over all.
            ordered = self._by_ids(ids, paging.order_by, paging.descending)
            matched = [record for record in ordered if predicate(record.wire)]
            return matched[paging.offset : paging.offset + paging.limit], len(matched)
        ordered = self._ordered(paging.order_by, paging.descending)
        if predicate is None:
            matched = ordered
        else:
            key = (json.dumps(body, sort_keys=True), paging.order_by, paging.descending)
            cached = self._results.get(key)
            if cached is None:
                cached = [record for record in ordered if predicate(record.wire)]
                self._results[key] = cached
                if len(self._results) > _RESULT_CACHE_SIZE:
                    self._results.popitem(last=False)
            else:
                self._results.move_to_end(key)
            matched = cached
        return matched[paging.offset : paging.offset + paging.limit], len(matched)
