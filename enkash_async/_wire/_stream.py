"""Reading search replies fast: the envelope now, each record only when it is reached.

A search reply is decoded by msgspec with its records left as :class:`msgspec.Raw`
views into the body, so a page held for streaming is its body plus one small view per
record. A record is decoded when the paginator reaches it, into a msgspec ``Struct``, then
onto the attrs reply model by a constructor generated once per class (``object.__new__``
and attribute stores).

Every shape the liberal reader of :mod:`._read` accepts is read on this path, field by
field, with that reader's values:

- fields EnKash documents as irregular (a string flag, ``LocalTime`` in any of
  Jackson's forms, date-times as text or epoch millis, amounts) are typed in the Struct
  as every JSON value they may hold; the common value is read inline, any other by the
  field's own liberal hook;
- the other fields are typed as documented, which costs nothing to check; the first
  record in which one holds another shape (a number where a string belongs, ``null``
  in a list of strings) widens that field, in that reader, to every JSON value it may
  hold with an inline check: from then on it pays for the check, and no record falls
  back.

Only a record no field hook can read (or that is no JSON object) goes to the liberal
reader whole, for its typed error naming the field.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import msgspec

from enkash_async._fast import JSONBytes, loads
from enkash_async._wire._codegen import compile_function
from enkash_async._wire._names import TEXT_FLAG, wire_name
from enkash_async._wire._read import (
    DECODE_ERRORS,
    enum_of,
    field_hook,
    read_bool,
    read_datetime,
    read_time,
    record_from_wire,
    record_list_of,
)
from enkash_async.errors import UnexpectedResponseError

__all__ = ["read_record_reply", "read_search_reply", "record_reader"]

T = TypeVar("T")

Raw = msgspec.Raw


class _Page(msgspec.Struct):
    data: list[msgspec.Raw] | None = None
    recordsCount: Any = None


class _Envelope(msgspec.Struct):
    payload: _Page | None = None
    response_code: Any = None
    errorResponse: Any = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)

_NULL = b"null"


class _RecordEnvelope(msgspec.Struct):
    payload: msgspec.Raw = msgspec.Raw(_NULL)
    response_code: Any = None
    errorResponse: Any = None


_record_envelope_decoder = msgspec.json.Decoder(_RecordEnvelope)


def read_record_reply(body: JSONBytes) -> Any:
    """A one-record reply's envelope as a dict, its ``payload`` left as a raw view (read
    by a :func:`record_reader` when wanted; None when absent or null).

    Raises ``ValueError`` for a body that is not JSON or is nested too deeply.
    """
    try:
        envelope = _record_envelope_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return loads(body)  # not an object, or not JSON: read (or refused) as any reply
    if not _plain_success(envelope):
        return loads(body)  # an error's every key may matter to the message
    payload: Any = envelope.payload
    if bytes(memoryview(payload)[:4]) == _NULL:  # JSON null (msgspec strips the blanks)
        payload = None
    return {
        "payload": payload,
        "response_code": envelope.response_code,
        "errorResponse": envelope.errorResponse,
    }


def read_search_reply(body: JSONBytes) -> Any:
    """A search reply's envelope as a dict, its ``payload.data`` records as raw views.

    A body of another shape is parsed whole by :func:`enkash_async._fast.loads` (so its
    problems are reported as for any reply). Raises ``ValueError`` for a body that is
    not JSON or is nested too deeply.
    """
    try:
        envelope = _envelope_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return loads(body)  # not this shape, or not JSON: read (or refused) as any reply
    if not _plain_success(envelope):
        return loads(body)  # an error's every key may matter to the message
    page = envelope.payload
    return {
        "payload": None if page is None else {"data": page.data, "recordsCount": page.recordsCount},
        "response_code": envelope.response_code,
        "errorResponse": envelope.errorResponse,
    }


def _plain_success(envelope: _Envelope | _RecordEnvelope) -> bool:
    """Whether the envelope says success plainly (``response_code`` 0 or absent, no error
    type or message): only then are its other keys of no interest."""
    code, error = envelope.response_code, envelope.errorResponse
    if not (code is None or (code.__class__ is int and code == 0)):
        return False
    return error is None or (
        error.__class__ is dict and not error.get("errorType") and not error.get("errorMessage")
    )


# --------------------------------------------------------------------------- records

_FALLBACK_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, *DECODE_ERRORS)

#: A field of a reply model: the model and its attribute name.
Field = tuple[type[Any], str]


def record_reader(model: type[T], what: str | None = None) -> Callable[[Any], T]:
    """A function reading one record of ``model``: from a raw view (fast) or a mapping
    of wire keys (liberal). It raises only
    :class:`~enkash_async.errors.UnexpectedResponseError`, naming the field path that
    cannot be read (or saying the record is not JSON, or nested too deeply).

    The fields it has widened (see the module's docstring) are its own: each reader
    starts with the documented types.
    """
    what = what or model.__name__
    wide: frozenset[Field] = frozenset()
    decode, build = _decoder_and_builder(model, wide)

    def read_odd(record: Raw, problem: Exception) -> T:
        """A raw record the current Struct refused: widen the field it names and read
        again, until it reads or names no field that can widen; then read it whole."""
        nonlocal wide, decode, build
        while isinstance(problem, msgspec.ValidationError):
            field = _widenable_field(model, str(problem))
            if field is None or field in wide:
                break
            wide = wide | {field}
            decode, build = _decoder_and_builder(model, wide)
            try:
                built: T = build(decode(record))
                return built
            except _FALLBACK_ERRORS as exc:
                problem = exc
        return read_whole_record(record, model, what)

    def read(record: Any) -> T:
        try:
            if record.__class__ is Raw:
                try:
                    built: T = build(decode(record))
                    return built
                except _FALLBACK_ERRORS as exc:
                    return read_odd(record, exc)
            return record_from_wire(record, model, what)
        except (msgspec.DecodeError, RecursionError) as exc:
            # Not JSON, or nested so deeply that reading (or describing) it recursed too far.
            raise_unreadable(what, exc)

    return read


def read_whole_record(record: Raw, model: type[T], what: str) -> T:
    """The per-record fallback: a raw record parsed to dicts and read by the liberal
    reader, which raises the typed error naming the field no hook could read."""
    return record_from_wire(msgspec.json.decode(record), model, what)


def raise_unreadable(what: str, exc: BaseException) -> typing.NoReturn:
    """Raise :class:`UnexpectedResponseError` for a record that is not JSON at all."""
    raise UnexpectedResponseError(f"reply is not a {what}: {exc}") from exc


_AT = re.compile(r" - at `\$((?:\.[^.\[`]+|\[\d+\])*)`$")
_STEP = re.compile(r"\.([^.\[`]+)|\[\d+\]")


def _widenable_field(model: type[Any], message: str) -> Field | None:
    """The field a msgspec validation message names (``... - at
    `$.customerKeyContacts[0].mobile```), if it is one typed as documented until widened."""
    found = _AT.search(message)
    if found is None:
        return None
    current = model
    for step in _STEP.finditer(found.group(1)):
        key = step.group(1)
        if key is None:
            continue  # an index into a record list
        attribute = _by_wire_name(current).get(key)
        if attribute is None:
            return None
        hint = typing.get_type_hints(current)[attribute.name]
        item_model = record_list_of(hint)
        if item_model is None:
            documented = _widened_plan(hint) is not None and not attribute.metadata.get(TEXT_FLAG)
            return (current, attribute.name) if documented else None
        current = item_model
    return None  # a record list or one of its items: only the liberal reader says why


def _by_wire_name(model: type[Any]) -> dict[str, attrs.Attribute[Any]]:
    return {wire_name(a): a for a in attrs.fields(model)}


_BUILT: dict[tuple[type[Any], frozenset[Field]], tuple[Any, Callable[[Any], Any]]] = {}
_STRUCTS: dict[tuple[type[Any], frozenset[Field]], type[msgspec.Struct]] = {}


def _decoder_and_builder(
    model: type[Any], wide: frozenset[Field]
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The decode function of ``model``'s Struct (``wide`` fields widened) and the
    function building ``model`` from it."""
    found = _BUILT.get((model, wide))
    if found is None:
        struct, build = _struct_and_builder(model, wide)
        # A float in a field typed Any (a Decimal's) arrives as _amount makes it.
        decode = msgspec.json.Decoder(struct, float_hook=_amount).decode
        found = _BUILT[(model, wide)] = (decode, build)
    return found


def _struct_and_builder(
    model: type[Any], wide: frozenset[Field] = frozenset()
) -> tuple[type[msgspec.Struct], Callable[[Any], Any]]:
    """The Struct of ``model`` and the function building ``model`` from it."""
    namespace: dict[str, Any] = {"__new": object.__new__}
    lines = [f"def build_{model.__name__}(s):"]
    struct = _emit(model, "s", "o", 0, namespace, lines, wide)
    memos = sorted(namespace.pop(_MEMOS, ()))
    if memos:  # each date-time key's last text and value, starting empty
        lines.insert(1, "    " + " = ".join([*memos, "None"]))
    lines.append("    return o")
    builder = compile_function(f"build_{model.__name__}", "\n".join(lines) + "\n", namespace)
    return struct, builder


def _emit(
    model: type[Any],
    s: str,
    o: str,
    depth: int,
    namespace: dict[str, Any],
    lines: list[str],
    wide: frozenset[Field],
) -> type[msgspec.Struct]:
    """Append the statements building ``model`` as ``o`` from its Struct ``s``; the Struct.

    The items of a record list are built inline, in a loop over msgspec's own list
    (fresh for this record), each item replaced by its model: no call per item.
    """
    setter: Any = model.__setattr__
    if (
        setter is not object.__setattr__
    ):  # pragma: no cover - every reply model is a plain attrs.define class
        raise TypeError(f"{model.__name__} runs hooks on setattr; cannot build it directly")
    pad = "    " * (1 + 2 * depth)
    namespace[f"__{model.__name__}"] = model
    lines.append(f"{pad}{o} = __new(__{model.__name__})")
    hints = typing.get_type_hints(model)
    struct_fields: list[tuple[str, Any, Any]] = []
    widened = frozenset(name for owner, name in wide if owner is model)
    for index, attribute in enumerate(attrs.fields(model)):
        key = wire_name(attribute)
        hint = hints[attribute.name]
        item_model = record_list_of(hint)
        if item_model is not None:
            items, at, item = f"l{depth}", f"i{depth}", f"x{depth}"
            lines += [
                f"{pad}{items} = {s}.{key}",
                f"{pad}if {items}:",
                f"{pad}    for {at} in range(len({items})):",
                f"{pad}        {item} = {items}[{at}]",
            ]
            item_struct = _emit(
                item_model, item, f"o{depth + 1}", depth + 1, namespace, lines, wide
            )
            lines += [
                f"{pad}        {items}[{at}] = o{depth + 1}",
                f"{pad}elif {items} is None:",
                f"{pad}    {items} = []",
                f"{pad}{o}.{attribute.name} = {items}",
            ]
            struct_fields.append((key, list[item_struct] | None, None))  # type: ignore[valid-type]
            continue
        plan = _field_plan(
            hint,
            f"{s}.{key}",
            f"__{model.__name__}_{index}",
            namespace,
            text_flag=bool(attribute.metadata.get(TEXT_FLAG)),
            widen=attribute.name in widened,
        )
        struct_fields.append((key, plan.struct_type, None))
        lines += [pad + line.format(target=f"{o}.{attribute.name}") for line in plan.lines]
    # By the whole set: a model's Struct holds its record lists' Structs.
    struct = _STRUCTS.get((model, wide))
    if struct is None:
        # In wire order (EnKash writes keys sorted), msgspec finds each key at its first guess.
        struct_fields.sort(key=lambda field: field[0])
        # gc=False: decoded from JSON, a Struct holds no cycle, and lives for one record.
        struct = msgspec.defstruct(f"Liberal{model.__name__}", struct_fields, gc=False)
        _STRUCTS[(model, wide)] = struct
    return struct


def _amount(text: str) -> Decimal | float:
    """A JSON float (its text) as the liberal reader reads it into a Decimal field.

    Positional, at most 15 significant digits and no trailing zero but ``.0``: then the
    float's repr has the same digits, so ``Decimal(text)`` is ``Decimal(repr(float))``
    without making the float. Any other text becomes the float, read by the builder.
    """
    if (
        len(text) <= 16
        and "." in text
        and "e" not in text
        and "E" not in text
        and (text[-1] != "0" or text[-2] == ".")
    ):
        return Decimal(text)
    return float(text)


def _as_floats(value: Any) -> Any:
    """A JSON value decoded untyped with every Decimal :func:`_amount` made back into
    its float (exactly: that Decimal is the float's own digits), as ``json.loads`` gives it."""
    if value.__class__ is Decimal:
        return float(value)
    if value.__class__ is list:
        return [_as_floats(item) for item in value]
    if value.__class__ is dict:
        return {key: _as_floats(item) for key, item in value.items()}
    return value


_SHORT_TEXT = 32  # the longest text whose reading is kept
# A string flag's readings by text ("true", "false", and whatever else a short text
# reads as: the seed's placeholder "string" is None), kept for the next record.
_FLAGS: dict[str, bool | None] = {"true": True, "false": False}
_FLAGS_HELD = 256


def _read_flag(value: Any) -> bool | None:
    """A string flag as :func:`._read.read_bool` reads it; a short text's reading is kept."""
    found = read_bool(value)
    if value.__class__ is str and len(_FLAGS) < _FLAGS_HELD and len(value) <= _SHORT_TEXT:
        _FLAGS[value] = found
    return found


_MEMOS = " memos"  # namespace key (no name can reach it) of the builder's memo locals
# Python 3.10's fromisoformat does not read EnKash's "Z": there the liberal reader parses.
_fromisoformat = dt.datetime.fromisoformat if sys.version_info >= (3, 11) else read_datetime
_time_fromisoformat = dt.time.fromisoformat

#: Every JSON scalar, for a field that may hold any.
_SCALAR = str | int | float | bool | None
_PLAIN = {str | None: str, int | None: int, str: str, int: int}
#: A field typed as documented, widened: its Struct type and the class read inline.
_WIDENED: dict[Any, tuple[Any, type[Any]]] = {
    str | None: (_SCALAR, str),
    str: (_SCALAR, str),
    int | None: (int | float | str | None, int),
    int: (int | float | str | None, int),
    bool | None: (_SCALAR, bool),
    bool: (_SCALAR, bool),
}

# A reminder's times of day, by text: a day has 1,440 minutes, and placeholders repeat.
_TIMES: dict[str, dt.time | str] = {}
_TIMES_HELD = 4096
_ints = frozenset({int}).issuperset


def _read_time(value: Any) -> dt.time | str | None:
    """A ``LocalTime`` in any of Jackson's forms, as :func:`._read.read_time` reads it;
    a short text's reading is kept for the next record."""
    if value.__class__ is not str:
        if value.__class__ is list and 2 <= len(value) <= 4 and _ints(map(type, value[:3])):
            try:  # Jackson's [10, 30] or [10, 30, 0]: read_time's reading, without its loop
                return dt.time(*value[:3])
            except (ValueError, OverflowError):
                pass
        return read_time(_as_floats(value))
    try:
        found: dt.time | str | None = _time_fromisoformat(value)
    except ValueError:
        found = read_time(value)  # "HH:mm" stays a string; " 10:30" is a time
    if len(_TIMES) < _TIMES_HELD and len(value) <= _SHORT_TEXT and found is not None:
        _TIMES[value] = found
    return found


@attrs.frozen
class _Plan:
    """How one field is read: its Struct type, and the statements (``{target}`` the
    attribute) that set it from the Struct's value."""

    struct_type: Any
    lines: tuple[str, ...]

    @classmethod
    def expression(cls, struct_type: Any, expression: str) -> _Plan:
        return cls(struct_type, (f"{{target}} = {expression}",))


def _widened_plan(hint: Any) -> tuple[Any, type[Any]] | None:
    """What a field typed as documented becomes when widened; None when it is read
    liberally from the start (or is a record list)."""
    if hint in _WIDENED:
        return _WIDENED[hint]
    if hint == list[str] or enum_of(hint) is not None:
        return _SCALAR, str
    return None


def _field_plan(
    hint: Any,
    source: str,
    hook: str,
    namespace: dict[str, Any],
    *,
    text_flag: bool = False,
    widen: bool = False,
) -> _Plan:
    """How a field is read off ``source`` (``hook``: the name under which the statements
    find their helper; ``widen``: the field held another shape in an earlier record)."""
    check = f"{hook}_class"
    if widen and not text_flag and hint in _WIDENED:
        struct_type, plain = _WIDENED[hint]
        namespace[hook] = field_hook(hint)
        namespace[check] = plain
        # The documented class (or null) as it is; any other value as the liberal reader reads it.
        return _Plan.expression(
            struct_type, f"v if (v := {source}).__class__ is {check} or v is None else {hook}(v)"
        )
    if hint in _PLAIN:
        return _Plan.expression(hint, source)
    if hint in (bool | None, bool):
        if not text_flag:
            # A flag EnKash writes as a boolean is copied; any other value widens the field.
            return _Plan.expression(hint, source)
        namespace[hook] = _read_flag
        namespace["__flags"] = _FLAGS
        # A text seen before without a call; anything else as the liberal reader reads it.
        return _Plan.expression(
            _SCALAR,
            f"__flags[v] if (v := {source}) in __flags"
            f" else v if v is None or v.__class__ is bool else {hook}(v)",
        )
    if hint == dt.datetime | None:
        # Not msgspec's datetime: it rounds nanoseconds, where Python (and the liberal
        # reader) truncate. A key contact's times are mostly its customer's: the same
        # text, parsed once a record (each key's last text and value, in locals).
        namespace[hook] = _fromisoformat
        namespace[f"{hook}_liberal"] = read_datetime
        key = source.rpartition(".")[2]
        text, value = f"t_{key}", f"d_{key}"
        namespace.setdefault(_MEMOS, set()).update((text, value))
        return _Plan(
            str | int | float | None,  # text, or epoch millis
            (
                f"v = {source}",
                "if v is None:",
                "    {target} = None",
                f"elif v == {text}:",
                f"    {{target}} = {value}",
                "else:",
                f"    {text} = v",
                "    try:",
                f"        {value} = {hook}(v)",
                "    except (TypeError, ValueError):",
                f"        {value} = {hook}_liberal(v)  # epoch millis, Java's forms, odd text",
                f"    {{target}} = {value}",
            ),
        )
    if hint == Decimal | None:
        namespace[hook] = field_hook(hint)
        namespace["__Decimal"] = Decimal
        # Any, not Decimal: a float reads as the liberal reader reads it (``1e5`` ->
        # Decimal('100000.0')): most already as a Decimal by _amount, the others as a
        # float here when finite (v - v == 0), without a call; an integer (the seed's
        # ``0``) is exact either way.
        return _Plan.expression(
            Any,
            f"v if (v := {source}) is None or v.__class__ is __Decimal"
            f" else __Decimal(v) if v.__class__ is int"
            f" else __Decimal(repr(v)) if v.__class__ is float and v - v == 0 else {hook}(v)",
        )
    enum_type = enum_of(hint)
    if enum_type is not None:
        namespace[hook] = {member.value: member for member in enum_type}.get
        if not widen:  # a known value becomes its member; an unknown one stays a string
            return _Plan.expression(
                str | None, f"None if (v := {source}) is None else {hook}(v, v)"
            )
        namespace[f"{hook}_liberal"] = field_hook(hint)
        return _Plan.expression(
            _SCALAR,
            f"None if (v := {source}) is None else {hook}(v, v) if v.__class__ is str"
            f" else {hook}_liberal(v)",
        )
    if hint == list[str]:
        if not widen:
            return _Plan.expression(list[str] | None, f"[] if (v := {source}) is None else v")
        namespace[hook] = field_hook(hint)
        namespace[f"{hook}_strings"] = frozenset({str}).issuperset
        return _Plan.expression(
            list[_SCALAR] | None,
            f"[] if (v := {source}) is None else v if {hook}_strings(map(type, v)) else {hook}(v)",
        )
    if dt.time in typing.get_args(hint):
        # Jackson writes a LocalTime as "10:30", "10:30:00", "10:30:00.123", [10, 30] or
        # an object; the seed's example holds the placeholder "HH:mm", kept as a string.
        namespace[hook] = _read_time
        namespace[f"{hook}_known"] = _TIMES.get
        return _Plan.expression(
            _SCALAR | list[Any] | dict[str, Any],
            f"None if (v := {source}) is None"
            f" else ({hook}_known(v) if v.__class__ is str else None) or {hook}(v)",
        )
    namespace[hook] = field_hook(hint)  # any other type: read as JSON, then liberally
    return _Plan.expression(Any, f"None if (v := {source}) is None else {hook}(v, None)")
