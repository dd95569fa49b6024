"""EnKash's wire format: the one place Python names meet EnKash's JSON names.

Python attributes are snake_case; on the wire they are camelCase, except for the few
keys EnKash itself spells in snake_case (``mail_enabled``, ``sms_enabled``,
``whatsapp_enabled``). Replies are read liberally by a cattrs converter whose hooks are
generated once at import; requests are built strictly by :func:`request_from_wire`, which
reports every problem in a tree with its path.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, Union

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from enkash_async._fast import paused_gc
from enkash_async.errors import FieldError, UnexpectedResponseError, ValidationError, excerpt
from enkash_async.models import (
    Customer,
    CustomerCreate,
    CustomerLevel,
    CustomerSearch,
    CustomerSource,
    CustomerStatus,
    ErrorType,
    KeyContact,
    KeyContactCreate,
    Reminder,
    ReminderCreate,
    ReminderType,
    SortDirection,
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

T = TypeVar("T")

# EnKash spells these keys in snake_case on the wire; every other key is camelCase.
_SNAKE_ON_WIRE = frozenset({"mail_enabled", "sms_enabled", "whatsapp_enabled"})

# Inner models first: an outer model's generated hooks take the inner ones' at build time.
_REQUEST_MODELS: tuple[type[Any], ...] = (
    ReminderCreate,
    KeyContactCreate,
    CustomerCreate,
    CustomerSearch,
)
_REPLY_MODELS: tuple[type[Any], ...] = (Reminder, KeyContact, Customer)
_ENUMS: tuple[type[enum.Enum], ...] = (
    ReminderType,
    CustomerSource,
    CustomerStatus,
    CustomerLevel,
    SortDirection,
    ErrorType,
)

# Keys EnKash requires that the Python model lets default (``deleted`` is sent as false).
_REQUIRED_ON_WIRE: dict[type[Any], frozenset[str]] = {KeyContactCreate: frozenset({"deleted"})}


def wire_name(attribute: str) -> str:
    """EnKash's JSON key for a Python attribute name."""
    if attribute in _SNAKE_ON_WIRE:
        return attribute
    head, *rest = attribute.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# --------------------------------------------------------------------------- values


class _WrongType(TypeError):
    def __init__(self, expected: str, value: Any) -> None:
        shown = excerpt(repr(value), 60)
        super().__init__(f"expected {expected}, got {type(value).__name__} {shown}")


def _read_str(value: Any, _: Any = None) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise _WrongType("a string", value)


_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0", ""})


def _read_bool(value: Any, _: Any = None) -> bool | None:
    if value is None or type(value) is bool:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        # An unrecognised flag reads as unknown rather than failing the whole record.
        return True if text in _TRUE else False if text in _FALSE else None
    if isinstance(value, (int, float)):
        return bool(value)
    raise _WrongType("a boolean", value)


def _read_int(value: Any, _: Any = None) -> int | None:
    if value is None or type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _WrongType("an integer", value)


def _read_decimal(value: Any, _: Any = None) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            pass
        else:
            if number.is_finite():  # NaN and Infinity are not amounts, and not JSON
                return number
    raise _WrongType("a number", value)


def _read_datetime(value: Any, _: Any = None) -> dt.datetime | None:
    if value is None:
        return None
    if value.__class__ is str:
        try:  # the common case first: EnKash's own "2019-08-24T14:15:22Z" (Python 3.11+)
            return _fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read "Z"
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            # A date EnKash formats oddly must not fail the whole record.
            return _read_java_datetime(text)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return dt.datetime.fromtimestamp(value / 1000, tz=dt.timezone.utc)  # epoch millis
        except (ValueError, OverflowError, OSError):
            return None  # out of range for a datetime
    raise _WrongType("a date-time", value)


_fromisoformat = dt.datetime.fromisoformat

_JAVA_DATETIME = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d)?)(?:[.,](\d+))?([+-]\d\d(?::?\d\d)?)?",
    re.ASCII,
)


def _read_java_datetime(text: str) -> dt.datetime | None:
    """What Java writes and Python 3.10's fromisoformat refuses: any number of fraction
    digits (``.5``, nanoseconds) and offsets without a colon (``+0530``)."""
    match = _JAVA_DATETIME.fullmatch(text)
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    iso = f"{day}T{clock}"
    if fraction:
        iso += "." + fraction[:6].ljust(6, "0")
    if offset:
        digits = offset[1:].replace(":", "")
        iso += f"{offset[0]}{digits[:2]}:{digits[2:] or '00'}"
    try:
        return dt.datetime.fromisoformat(iso)
    except ValueError:
        return None


def _read_time(value: Any, _: Any = None) -> dt.time | str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            return value
    if isinstance(value, Mapping) and "hour" in value:  # Jackson's LocalTime as an object
        try:
            return dt.time(
                int(value["hour"]), int(value.get("minute") or 0), int(value.get("second") or 0)
            )
        except (TypeError, ValueError, OverflowError):
            return str(dict(value))
    if isinstance(value, list) and 2 <= len(value) <= 4:  # Jackson's LocalTime as [h, m, s]
        try:
            hour, minute, *rest = (int(part) for part in value[:3])
            return dt.time(hour, minute, rest[0] if rest else 0)
        except (TypeError, ValueError, OverflowError):
            return str(value)
    return str(value)


def _read_enum(enum_type: type[enum.Enum]) -> Callable[[Any, Any], Any]:
    members = {member.value: member for member in enum_type}

    def read(value: Any, _: Any = None) -> Any:
        if value is None:
            return None
        member = members.get(value) if isinstance(value, str) else None
        return member if member is not None else _read_str(value)

    return read


def _read_str_list(value: Any, _: Any = None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _WrongType("a list", value)
    return [text for item in value if (text := _read_str(item)) is not None]


def _read_records(
    record_type: type[T], read_one: Callable[[Any, Any], T]
) -> Callable[..., list[T]]:
    def read(value: Any, _: Any = None) -> list[T]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _WrongType("a list", value)
        return [read_one(_mapping(item, record_type), record_type) for item in value]

    return read


def _mapping(value: Any, record_type: type[Any]) -> Mapping[str, Any]:
    if value.__class__ is dict:  # what json.loads gives: skip the slow ABC check
        return value
    if not isinstance(value, Mapping):
        raise _WrongType(f"a {record_type.__name__} object", value)
    return value


def _write_datetime(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        try:
            value = value.astimezone(dt.timezone.utc)
        except OverflowError:  # the first or last day a datetime can hold
            return value.isoformat()
    # isoformat, not strftime: strftime drops the fraction and writes year 1 as "1".
    timespec = "microseconds" if value.microsecond else "seconds"
    return value.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def _write_time(value: dt.time | str) -> str:
    return value.strftime("%H:%M") if isinstance(value, dt.time) else value


def _enum_value(member: enum.Enum) -> Any:
    return member.value


def _write_decimal(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# --------------------------------------------------------------------------- converter


def _is_tuple_type(type_: Any) -> bool:
    return typing.get_origin(type_) is tuple


def _is_list_of(model: type[Any]) -> Callable[[Any], bool]:
    def predicate(type_: Any) -> bool:
        return typing.get_origin(type_) is list and typing.get_args(type_) == (model,)

    return predicate


def _build_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
    # Hooks for the exact optional types used, so cattrs does not dispatch through unions.
    for type_, hook in (
        (str, _read_str),
        (bool, _read_bool),
        (int, _read_int),
        (Decimal, _read_decimal),
        (dt.datetime, _read_datetime),
    ):
        converter.register_structure_hook(type_, hook)
        converter.register_structure_hook(typing.Optional[type_], hook)  # noqa: UP045
    converter.register_structure_hook(Union[dt.time, str, None], _read_time)  # noqa: UP007
    converter.register_structure_hook(
        Union[ReminderType, str, None],  # noqa: UP007
        _read_enum(ReminderType),
    )
    converter.register_structure_hook_func(lambda t: t == list[str], _read_str_list)

    converter.register_unstructure_hook(dt.datetime, _write_datetime)
    converter.register_unstructure_hook(dt.time, _write_time)
    converter.register_unstructure_hook(Decimal, _write_decimal)
    for enum_type in _ENUMS:
        # Each by name: a str-valued enum would otherwise dispatch as a str and stay a member.
        converter.register_unstructure_hook(enum_type, _enum_value)
    converter.register_unstructure_hook_func(
        _is_tuple_type, lambda items: [converter.unstructure(item) for item in items]
    )

    for model in _REPLY_MODELS:
        structure = _make_reply_structure(model, converter)
        converter.register_structure_hook(model, structure)
        converter.register_structure_hook_func(_is_list_of(model), _read_records(model, structure))
    for model in _REPLY_MODELS + _REQUEST_MODELS:
        # Unset optional fields are left out; required and non-None defaults are always sent.
        overrides = {
            a.name: override(rename=wire_name(a.name), omit_if_default=a.default is None)
            for a in attrs.fields(model)
        }
        converter.register_unstructure_hook(
            model,
            make_dict_unstructure_fn(model, converter, **overrides),  # type: ignore[arg-type]
        )
    return converter


# Reply fields whose common JSON type needs no conversion: the generated code checks the
# class inline and calls the hook only for the odd value.
_INLINE_CHECKS: dict[Any, type[Any]] = {
    **{typing.Optional[t]: t for t in (str, bool, int)},  # noqa: UP045
    **{t: t for t in (str, bool, int)},
}


def _make_reply_structure(model: type[Any], converter: cattrs.Converter) -> Callable[..., Any]:
    """A structure function for a reply record, generated once.

    It does what cattrs' generated function does (wire key -> attribute, via the hooks
    registered above) with the per-field work for the common case inlined: streaming
    pages of 5000 customers spends most of its time here.
    """
    hints = typing.get_type_hints(model)
    namespace: dict[str, Any] = {"__cl": model}
    arguments = []
    for index, attribute in enumerate(attrs.fields(model)):
        hint = hints[attribute.name]
        key = wire_name(attribute.name)
        hook = f"__h{index}"
        namespace[hook] = converter.get_structure_hook(hint)
        plain = _INLINE_CHECKS.get(hint)
        if plain is not None:
            namespace[f"__t{index}"] = plain
            value = f"(v if (v := g({key!r})) is None or v.__class__ is __t{index} else {hook}(v))"
        elif typing.get_origin(hint) is list:
            value = f"{hook}(g({key!r}))"
        else:
            value = f"(None if (v := g({key!r})) is None else {hook}(v))"
        arguments.append(f"{attribute.name}={value}")
    name = f"structure_{model.__name__}"
    source = f"def {name}(o, _=None):\n    g = o.get\n    return __cl(\n"
    source += "".join(f"        {argument},\n" for argument in arguments) + "    )\n"
    exec(compile(source, f"<enkash_async generated {name}>", "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    return function


_converter = _build_converter()
_structure_customer = _converter.get_structure_hook(Customer)

# What a failed liberal read may raise before it is translated at this edge.
_DECODE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError)


def customer_from_wire(data: Any) -> Customer:
    """A ``Customer`` from a ``CustomerResponse`` object.

    Raises :class:`UnexpectedResponseError` when the reply has the wrong shape.
    """
    try:
        return customer_from_record(_mapping(data, Customer))
    except _WrongType as exc:
        raise UnexpectedResponseError(f"reply is not a CustomerResponse: {exc}") from exc


def customer_from_record(record: Mapping[str, Any]) -> Customer:
    """A ``Customer`` from a record :func:`page_records_from_wire` already found to be an
    object (so each streamed record is checked once).

    Raises :class:`UnexpectedResponseError` when a field has the wrong shape.
    """
    try:
        customer: Customer = _structure_customer(record, Customer)
        return customer
    except _DECODE_ERRORS as exc:
        raise UnexpectedResponseError(f"reply is not a CustomerResponse: {exc}") from exc


def page_records_from_wire(payload: Any) -> tuple[list[dict[str, Any]], int | None]:
    """The raw customer records and ``recordsCount`` of a page, shape-checked only.

    Raises :class:`UnexpectedResponseError` when the reply has the wrong shape.
    """
    try:
        page = _mapping(payload, dict)
        data = page.get("data")
        if data is None:
            data = []
        elif not isinstance(data, list):
            raise _WrongType("a list in 'data'", data)
        for item in data:
            _mapping(item, Customer)
        return data, _read_int(page.get("recordsCount"))
    except _DECODE_ERRORS as exc:
        raise UnexpectedResponseError(f"reply is not a page of customers: {exc}") from exc


def page_from_wire(payload: Any) -> tuple[list[Customer], int | None]:
    """The customers and ``recordsCount`` of a ``GenericPaginationResponse«CustomerResponse»``.

    Raises :class:`UnexpectedResponseError` when the reply has the wrong shape.
    """
    records, records_count = page_records_from_wire(payload)
    with paused_gc():
        return [customer_from_record(record) for record in records], records_count


def record_key(record: Mapping[str, Any]) -> Any:
    """A raw customer record's identity: its ``customerId``, else its ``id``."""
    key = record.get("customerId")
    return key if key is not None else record.get("id")


def to_wire(model: Any) -> dict[str, Any]:
    """A model as EnKash's JSON object (wire names, JSON values)."""
    result: dict[str, Any] = _converter.unstructure(model)
    return result


def to_python_dict(model: Any) -> dict[str, Any]:
    """A model as a dict of Python names and values, nested records as dicts."""
    return attrs.asdict(model, recurse=True)


def to_row(model: Any) -> dict[str, Any]:
    """A record as one flat row: scalars as they are, lists of strings joined, lists of
    records as a ``<name>_count``, and the first key contact's name, mobile and email as
    ``key_contact_*``. Every record of a type gets the same columns, for tabular tools."""
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
        row["key_contact_name"] = getattr(first, "name", None)
        row["key_contact_mobile"] = getattr(first, "mobile", None)
        row["key_contact_email"] = getattr(first, "email", None)
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


# --------------------------------------------------------------------------- strict requests


def _flatten(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


@attrs.frozen
class _RequestShape:
    """What building a request model from wire JSON needs to know, computed once."""

    fields: dict[str, attrs.Attribute[Any]]  # wire key -> attribute
    nested: dict[str, type[Any]]  # attribute -> request model of its items
    moments: frozenset[str]  # attributes holding datetimes
    required: tuple[str, ...]

    @classmethod
    def of(cls, model: type[Any]) -> _RequestShape:
        hints = typing.get_type_hints(model)
        nested = {}
        for a in attrs.fields(model):
            for arg in _flatten(hints[a.name]):
                if typing.get_origin(arg) is tuple and typing.get_args(arg)[0] in _REQUEST_MODELS:
                    nested[a.name] = typing.get_args(arg)[0]
        return cls(
            fields={wire_name(a.name): a for a in attrs.fields(model)},
            nested=nested,
            moments=frozenset(
                a.name for a in attrs.fields(model) if dt.datetime in _flatten(hints[a.name])
            ),
            required=tuple(
                a.name
                for a in attrs.fields(model)
                if a.default is attrs.NOTHING or a.name in _REQUIRED_ON_WIRE.get(model, ())
            ),
        )


_SHAPES: dict[type[Any], _RequestShape] = {m: _RequestShape.of(m) for m in _REQUEST_MODELS}


def request_from_wire(data: Any, model: type[T]) -> T:
    """Build a request model from EnKash's wire JSON.

    Every problem in the tree is reported at once in one :class:`ValidationError`, each
    with its Python path (``customer_key_contacts[0].mobile``); keys EnKash does not
    document are problems too, so nothing submitted is silently dropped.
    """
    instance, problems = _build(data, model, "")
    if problems:
        raise ValidationError(problems, model=model.__name__)
    assert isinstance(instance, model)
    return instance


def _build(data: Any, model: type[Any], path: str) -> tuple[Any, list[FieldError]]:
    if not isinstance(data, Mapping):
        where = path or "$"
        return None, [FieldError(where, f"must be an object, got {type(data).__name__}")]
    shape = _SHAPES[model]
    problems: list[FieldError] = []
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        attribute = shape.fields.get(key)
        if attribute is None:
            problems.append(FieldError(_join(path, str(key)), "is not a field EnKash documents"))
            continue
        name = attribute.name
        if name in shape.nested and isinstance(value, list):
            items = []
            for index, item in enumerate(value):
                built, item_problems = _build(
                    item, shape.nested[name], _join(path, f"{name}[{index}]")
                )
                problems.extend(item_problems)
                if built is not None:
                    items.append(built)
            value = items
        elif name in shape.moments and isinstance(value, str):
            parsed = _read_datetime(value)
            if parsed is None:
                problem = f"must be an ISO date-time; got {value!r}"
                problems.append(FieldError(_join(path, name), problem))
                continue
            value = parsed
        kwargs[name] = value
    for name in shape.required:
        kwargs.setdefault(name, None)  # the model's own check says it is required
    try:
        return model(**kwargs), problems
    except ValidationError as exc:
        return None, problems + list(exc.prefixed(path).errors)


def _join(path: str, name: str) -> str:
    if not path:
        return name
    return f"{path}{name}" if name.startswith("[") else f"{path}.{name}"
