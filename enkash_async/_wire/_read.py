"""Reading replies liberally: whatever EnKash sends becomes a reply model if it can.

A cattrs converter holds one hook per field type; a reply model's structure function is
generated once per class (wire key -> attribute, the common case inlined). Hooks are
found by predicate, so any attrs class, list of them or ``Enum | str`` field is served
without a hand-kept list of models. This module knows no model by name.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import struct
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, Union

import attrs
import cattrs
import msgspec

from enkash_async._wire._codegen import compile_function
from enkash_async._wire._names import wire_name
from enkash_async.errors import UnexpectedResponseError, excerpt

__all__ = [
    "DECODE_ERRORS",
    "WrongType",
    "locate_problem",
    "page_records_from_wire",
    "read_bool",
    "read_datetime",
    "read_decimal",
    "read_int",
    "read_str",
    "read_time",
    "record_from_wire",
    "record_key",
    "structure_hook",
]

T = TypeVar("T")


class WrongType(TypeError):
    """A reply value of a type the field cannot be read from."""

    def __init__(self, expected: str, value: Any) -> None:
        shown = excerpt(repr(value), 60)
        super().__init__(f"expected {expected}, got {type(value).__name__} {shown}")


# What a failed liberal read may raise before it is translated at this edge.
DECODE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError)


# --------------------------------------------------------------------------- values


def read_str(value: Any, _: Any = None) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise WrongType("a string", value)


_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0", ""})


def read_bool(value: Any, _: Any = None) -> bool | None:
    if value is None or type(value) is bool:
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        # An unrecognised flag reads as unknown rather than failing the whole record.
        return True if text in _TRUE else False if text in _FALSE else None
    if isinstance(value, (int, float)):
        return bool(value)
    raise WrongType("a boolean", value)


def read_int(value: Any, _: Any = None) -> int | None:
    if value is None or type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise WrongType("an integer", value)


def read_decimal(value: Any, _: Any = None) -> Decimal | None:
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
    raise WrongType("a number", value)


def read_datetime(value: Any, _: Any = None) -> dt.datetime | None:
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
    raise WrongType("a date-time", value)


_fromisoformat = dt.datetime.fromisoformat

_JAVA_DATETIME = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d)?)(?:[.,](\d+))?([+-]\d\d(?::?\d\d)?)?",
    re.ASCII,
)


def _read_java_datetime(text: str) -> dt.datetime | None:
    """What Java writes and Python 3.10's fromisoformat refuses: any number of fraction
    digits (``.5``, nanoseconds, truncated to microseconds) and offsets without a colon."""
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


def read_time(value: Any, _: Any = None) -> dt.time | str | None:
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


def read_enum(enum_type: type[enum.Enum]) -> Callable[[Any, Any], Any]:
    """A known value becomes the member; any other value is kept as a string."""
    members = {member.value: member for member in enum_type}

    def read(value: Any, _: Any = None) -> Any:
        if value is None:
            return None
        member = members.get(value) if isinstance(value, str) else None
        return member if member is not None else read_str(value)

    return read


def _read_str_list(value: Any, _: Any = None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WrongType("a list", value)
    return [text for item in value if (text := read_str(item)) is not None]


def _read_records(
    record_type: type[T], read_one: Callable[[Any, Any], T]
) -> Callable[..., list[T]]:
    def read(value: Any, _: Any = None) -> list[T]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise WrongType("a list", value)
        return [read_one(_mapping(item, record_type), record_type) for item in value]

    return read


def _mapping(value: Any, record_type: type[Any]) -> Mapping[str, Any]:
    if value.__class__ is dict:  # what json.loads gives: skip the slow ABC check
        return value
    if not isinstance(value, Mapping):
        raise WrongType(f"a {record_type.__name__} object", value)
    return value


# --------------------------------------------------------------------------- predicates


def members(hint: Any) -> tuple[Any, ...]:
    """The members of a union (``X | Y``, ``Optional[X]``), or the type alone."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def enum_of(hint: Any) -> type[enum.Enum] | None:
    """The enum of an ``Enum | str | None`` field (a reply keeps unknown values), or None."""
    found = [m for m in members(hint) if isinstance(m, type) and issubclass(m, enum.Enum)]
    if len(found) == 1 and str in members(hint):
        return found[0]
    return None


def record_list_of(hint: Any) -> type[Any] | None:
    """The attrs class of a ``list[Model]`` field, or None."""
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if attrs.has(item):
            return typing.cast(type[Any], item)
    return None


def _build_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
    # Hooks for the exact optional types used, so cattrs does not dispatch through unions.
    for type_, hook in (
        (str, read_str),
        (bool, read_bool),
        (int, read_int),
        (Decimal, read_decimal),
        (dt.datetime, read_datetime),
    ):
        converter.register_structure_hook(type_, hook)
        converter.register_structure_hook(typing.Optional[type_], hook)  # noqa: UP045
    converter.register_structure_hook(Union[dt.time, str, None], read_time)  # noqa: UP007
    converter.register_structure_hook_func(lambda t: t == list[str], _read_str_list)
    converter.register_structure_hook_factory(
        lambda t: enum_of(t) is not None,
        lambda t: read_enum(typing.cast(type[enum.Enum], enum_of(t))),
    )
    # Factories: a model's hook is generated when first asked for, inner models included.
    converter.register_structure_hook_factory(
        lambda t: record_list_of(t) is not None,
        lambda t: _read_records(
            typing.cast(type[Any], record_list_of(t)),
            converter.get_structure_hook(record_list_of(t)),
        ),
    )
    converter.register_structure_hook_factory(
        attrs.has, lambda model: _make_reply_structure(model, converter)
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
    registered above) with the per-field work for the common case inlined.
    """
    hints = typing.get_type_hints(model)
    namespace: dict[str, Any] = {"__cl": model}
    arguments = []
    for index, attribute in enumerate(attrs.fields(model)):
        hint = hints[attribute.name]
        key = wire_name(attribute)
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
    return compile_function(name, source, namespace)


_converter = _build_converter()


def structure_hook(model: type[T]) -> Callable[[Mapping[str, Any], Any], T]:
    """The liberal reader of reply model ``model`` (a mapping of wire keys in, a model out)."""
    hook: Callable[[Mapping[str, Any], Any], T] = _converter.get_structure_hook(model)
    return hook


def field_hook(hint: Any) -> Callable[[Any, Any], Any]:
    """The liberal reader of one field type."""
    hook: Callable[[Any, Any], Any] = _converter.get_structure_hook(hint)
    return hook


def record_from_wire(data: Any, model: type[T], what: str | None = None) -> T:
    """A reply model from a wire object, read liberally.

    Raises :class:`UnexpectedResponseError` naming the first field (by its wire path)
    whose value cannot be read.
    """
    try:
        return structure_hook(model)(_mapping(data, model), model)
    except DECODE_ERRORS as exc:
        problem = locate_problem(data, model) or str(exc)
        what = what or model.__name__
        raise UnexpectedResponseError(f"reply is not a {what}: {problem}") from exc


def locate_problem(data: Any, model: type[Any], path: str = "$") -> str | None:
    """Where and why ``data`` cannot be read as ``model``: ``"$.customerKeyContacts[0].mobile:
    expected a string, got dict {}"``; None if no single field is to blame. Slow: for errors."""
    if not isinstance(data, Mapping):
        return f"{path}: {WrongType(f'a {model.__name__} object', data)}"
    hints = typing.get_type_hints(model)
    for attribute in attrs.fields(model):
        key = wire_name(attribute)
        value = data.get(key)
        where = f"{path}.{key}"
        item_model = record_list_of(hints[attribute.name])
        if item_model is not None and isinstance(value, list):
            for index, item in enumerate(value):
                found = locate_problem(item, item_model, f"{where}[{index}]")
                if found is not None:
                    return found
            continue
        try:
            field_hook(hints[attribute.name])(value, None)
        except DECODE_ERRORS as exc:
            return f"{where}: {exc}"
    return None


def page_records_from_wire(payload: Any, model: type[Any]) -> tuple[list[Any], int | None]:
    """The raw records and ``recordsCount`` of a ``GenericPaginationResponse``, each
    record checked to be an object only (it is read when reached).

    Raises :class:`UnexpectedResponseError` when the reply has the wrong shape.
    """
    try:
        page = _mapping(payload, dict)
        data = page.get("data")
        if data is None:
            data = []
        elif not isinstance(data, list):
            raise WrongType("a list in 'data'", data)
        try:  # raw views: every first byte at once, in C
            checked = set(map(_first_byte, data)) <= _OBJECT_START
        except (TypeError, struct.error):  # parsed records (no buffer), checked one by one
            checked = False
        for index, item in enumerate(() if checked else data):
            # A raw view's first byte says whether it is an object (msgspec strips blanks).
            if not (
                memoryview(item)[0] == 0x7B if item.__class__ is _Raw else isinstance(item, Mapping)
            ):
                raise WrongType(f"a {model.__name__} object at $.data[{index}]", item)
        return data, read_int(page.get("recordsCount"))
    except DECODE_ERRORS as exc:
        raise UnexpectedResponseError(
            f"reply is not a page of {model.__name__} records: {exc}"
        ) from exc


_Raw = msgspec.Raw
_first_byte = struct.Struct("B").unpack_from
_OBJECT_START = {(0x7B,)}  # "{"


class _Identity(msgspec.Struct):
    customerId: Any = None
    id: Any = None


_identity = msgspec.json.Decoder(_Identity)


def record_key(record: Any) -> Any:
    """A raw record's identity (a mapping or a raw view): its ``customerId``, else its ``id``."""
    if record.__class__ is msgspec.Raw:
        try:
            found = _identity.decode(record)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None  # not an object: no identity
        key, fallback = found.customerId, found.id
    else:
        key, fallback = record.get("customerId"), record.get("id")
    return key if key is not None else fallback
