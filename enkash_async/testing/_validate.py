"""Request checks of the fake server: the create body, the search filter and paging.

Each check answers a list of :class:`SubError` (empty when the request is fine), one per
bad field, named by wire name or path such as ``customerKeyContacts[0].mobile``.
Wrong JSON types are reported the same way (EnKash's own message for them is less
helpful, but the fake server's job is to point at the client's mistake).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final, Literal

import attrs

from enkash_async._validation import pan_or_gstin_problem, pattern_problem

from ._data import CUSTOMER_FIELDS, LEVELS
from ._envelope import SubError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "SORTABLE_FIELDS",
    "Paging",
    "parse_datetime",
    "validate_create",
    "validate_filter",
    "validate_paging",
    "validate_update",
]

Kind = Literal["string", "boolean", "int32", "number", "array", "enum", "time", "datetime"]

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
MAX_LIMIT: Final = 5000
DEFAULT_LIMIT: Final = 10

#: Reply fields ``orderBy`` accepts: every scalar field of ``CustomerResponse``.
SORTABLE_FIELDS: Final[frozenset[str]] = frozenset(CUSTOMER_FIELDS) - {
    "branchCodes",
    "customerKeyContacts",
    "customerReminders",
    "warnings",
}


@attrs.frozen
class _Field:
    kind: Kind
    required: bool = False
    # A rule beyond the JSON type, e.g. a documented pattern.
    rule: Callable[[str], str | None] | None = None
    choices: tuple[str, ...] = ()
    # For arrays: the spec of each element (an object), or None for strings.
    items: Mapping[str, _Field] | None = None


def _pattern(wire_name: str) -> Callable[[str], str | None]:
    return lambda value: pattern_problem(wire_name, value)


_KEY_CONTACT: Final[dict[str, _Field]] = {
    "deleted": _Field("boolean", required=True),
    "email": _Field("string", rule=_pattern("email")),
    "keyContactPersonId": _Field("string"),
    "legalName": _Field("string", required=True),
    "mail_enabled": _Field("boolean"),
    "mobile": _Field("string", required=True, rule=_pattern("mobile")),
    "name": _Field("string", required=True),
    "sms_enabled": _Field("boolean"),
    "via": _Field("string"),
    "whatsapp_enabled": _Field("boolean"),
}

_REMINDER: Final[dict[str, _Field]] = {
    "customerReminderId": _Field("string"),
    "dueDateDifference": _Field("int32"),
    "reminderInterval": _Field("int32"),
    "reminderTime": _Field("time"),
    "reminderType": _Field("enum", choices=("ONCE", "RECURRING")),
    "stage": _Field("string"),
}

_CUSTOMER: Final[dict[str, _Field]] = {
    "accountNumber": _Field("string", rule=_pattern("accountNumber")),
    "address": _Field("string"),
    "companyId": _Field("string", rule=_pattern("companyId")),
    "contactNumber": _Field("string", rule=_pattern("contactNumber")),
    "customerCompanyId": _Field("string"),
    "customerKeyContacts": _Field("array", required=True, items=_KEY_CONTACT),
    "customerReminders": _Field("array", items=_REMINDER),
    "externalSource": _Field("boolean"),
    "ifsc": _Field("string", rule=_pattern("ifsc")),
    "legalName": _Field("string", required=True),
    "panOrGstin": _Field("string", rule=pan_or_gstin_problem),
    "pinCode": _Field("string", rule=_pattern("pinCode")),
    "source": _Field("enum", choices=("ENKASH", "TALLY")),
    "state": _Field("string"),
    "uniqueRefNo": _Field("string"),
}

_FILTER: Final[dict[str, _Field]] = {
    "accountNumber": _Field("string"),
    "assignedAgent": _Field("string"),
    "balanceAmount": _Field("number"),
    "companyId": _Field("string"),
    "contactNumber": _Field("string"),
    "createdByName": _Field("string"),
    "createdOnFrom": _Field("datetime"),
    "createdOnTo": _Field("datetime"),
    "customerIds": _Field("array"),
    "customerStatus": _Field("enum", choices=("ACTIVE", "ALL", "INACTIVE")),
    "dsoFrom": _Field("int32"),
    "dsoTo": _Field("int32"),
    "ifsc": _Field("string"),
    "legalName": _Field("string"),
    "level": _Field("enum", choices=LEVELS),
    "modifiedByName": _Field("string"),
    "modifiedOn": _Field("datetime"),
    "panOrGstin": _Field("string"),
    "parentCompanyId": _Field("string"),
    "selectAll": _Field("boolean"),
    "uniqueRefNo": _Field("string"),
}

_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)


def parse_datetime(text: str) -> datetime | None:
    """An ISO 8601 date-time (``Z``, an offset, or none meaning UTC) in UTC, or None."""
    if "T" not in text and "t" not in text:
        return None
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _type_problem(spec: _Field, value: Any) -> str | None:
    """Why ``value`` is not of the JSON type ``spec`` wants, or None."""
    kind = spec.kind
    if kind in ("string", "enum", "time", "datetime"):
        if not isinstance(value, str):
            return "must be a string"
        if kind == "enum" and value not in spec.choices:
            return f"must be one of {', '.join(spec.choices)}"
        if kind == "time" and not _TIME.fullmatch(value):
            return "must be a time of day as HH:mm"
        if kind == "datetime" and parse_datetime(value) is None:
            return "must be an ISO 8601 date-time such as 2026-11-23T10:15:30Z"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be a boolean"
    if kind == "int32":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        return None if _INT32_MIN <= value <= _INT32_MAX else "must fit in 32 bits"
    if kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "must be a number"
    return None if isinstance(value, list) else "must be an array"


def _check_object(
    body: Mapping[str, Any], specs: Mapping[str, _Field], prefix: str, strict: bool
) -> list[SubError]:
    problems: list[SubError] = []
    for name, spec in specs.items():
        path = prefix + name
        value = body.get(name)
        if value is None:
            if spec.required:
                problems.append(SubError(path, None, "must not be null"))
            continue
        problem = _type_problem(spec, value)
        if problem is None and isinstance(value, str):
            # A required field with a pattern says itself whether blank is allowed (mobile: ^$|...).
            if spec.required and spec.rule is None and not value.strip():
                problem = "must not be blank"
            elif spec.rule is not None:
                problem = spec.rule(value)
        if problem is not None:
            problems.append(SubError(path, value, problem))
            continue
        if isinstance(value, list):
            problems.extend(_check_items(value, spec.items, path, strict))
    if strict:
        problems.extend(
            SubError(prefix + name, body[name], "is not a field of this request")
            for name in body
            if name not in specs
        )
    return problems


def _check_items(
    items: list[Any], spec: Mapping[str, _Field] | None, path: str, strict: bool
) -> list[SubError]:
    problems: list[SubError] = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        if spec is None:
            if not isinstance(item, str):
                problems.append(SubError(where, item, "must be a string"))
        elif not isinstance(item, dict):
            problems.append(SubError(where, item, "must be an object"))
        else:
            problems.extend(_check_object(item, spec, where + ".", strict))
    return problems


def validate_create(body: Mapping[str, Any], *, strict: bool = True) -> list[SubError]:
    """Every documented rule ``body`` (a ``CustomerCreate``) breaks.

    ``strict`` also rejects fields the schema does not have (a client's misspelt name
    would otherwise vanish silently, as it does with Jackson's usual setting).
    """
    return _check_object(body, _CUSTOMER, "", strict)


# The PATCH page's fields (updateCustomer): every one JsonNullable and optional.
_UPDATE: Final[dict[str, _Field]] = {
    **{
        name: attrs.evolve(_CUSTOMER[name], required=False)
        for name in (
            "accountNumber",
            "address",
            "contactNumber",
            "customerKeyContacts",
            "customerReminders",
            "ifsc",
            "legalName",
            "panOrGstin",
            "pinCode",
            "state",
            "uniqueRefNo",
        )
    },
    "assignedAgent": _Field("string"),
    "branchCodes": _Field("array"),
    "customerId": _Field("string"),
}
# What a customer must keep: a PATCH may leave these out, never clear them [inferred].
_NOT_CLEARABLE: Final = ("legalName", "customerKeyContacts")


def validate_update(body: Mapping[str, Any], *, strict: bool = True) -> list[SubError]:
    """Every rule a PATCH body breaks: create's rules for the fields it sets, and no
    ``null`` (or blank name) for a field a customer must have."""
    problems = [
        SubError(name, None, "must not be null")
        for name in _NOT_CLEARABLE
        if name in body and body[name] is None
    ]
    name = body.get("legalName")
    if isinstance(name, str) and not name.strip():
        problems.append(SubError("legalName", name, "must not be blank"))
    return problems + _check_object(body, _UPDATE, "", strict)


def validate_filter(body: Mapping[str, Any], *, strict: bool = True) -> list[SubError]:
    """Every type rule a search filter ``body`` breaks."""
    return _check_object(body, _FILTER, "", strict)


@attrs.frozen
class Paging:
    """The search query parameters, checked."""

    offset: int = 0
    limit: int = DEFAULT_LIMIT
    order_by: str = "id"
    descending: bool = False


def _query_int(
    query: Mapping[str, str], name: str, default: int, low: int, high: int
) -> tuple[int, SubError | None]:
    text = query.get(name)
    if text is None:
        return default, None
    if not _INTEGER.fullmatch(text):
        return default, SubError(name, text, "must be an integer")
    value = int(text)
    if not low <= value <= high:
        return default, SubError(name, text, f"must be between {low} and {high}")
    return value, None


def validate_paging(
    query: Mapping[str, str], *, default_limit: int = DEFAULT_LIMIT
) -> tuple[Paging, list[SubError]]:
    """``offset``, ``limit``, ``orderBy`` and ``direction``, with what is wrong with them."""
    problems: list[SubError] = []
    offset, problem = _query_int(query, "offset", 0, 0, _INT32_MAX)
    if problem:
        problems.append(problem)
    limit, problem = _query_int(query, "limit", default_limit, 1, MAX_LIMIT)
    if problem:
        problems.append(problem)
    order_by = query.get("orderBy", "id")
    if order_by not in SORTABLE_FIELDS:
        problems.append(
            SubError("orderBy", order_by, "must name a scalar field of CustomerResponse")
        )
    direction = query.get("direction", "ASC")
    if direction not in ("ASC", "DESC"):
        problems.append(SubError("direction", direction, "must be one of ASC, DESC"))
    return Paging(offset, limit, order_by, direction == "DESC"), problems
