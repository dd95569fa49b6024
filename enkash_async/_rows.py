"""Models as rows: flat dicts of Python names for tabular tools (``Page.to_rows()``, pandas).

Derived from the models' own ``attrs`` declarations (field order, declared types), so a
field added to a model is a column here with no second list to keep. The CSV files the
CLI and the sync write and read are :mod:`enkash_async._csv`'s format, not these rows.
"""

from __future__ import annotations

import enum
import typing
from typing import Any, Final

import attrs

__all__ = ["csv_columns", "to_python_dict", "to_row"]


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
