"""Reading search replies fast: the envelope now, each record only when it is reached.

A search reply is decoded by msgspec with its records left as :class:`msgspec.Raw`
views into the body, so a page held for streaming is its body plus one small view per
record. A record is decoded when the paginator reaches it, into a msgspec ``Struct``
whose fields are typed liberally, then onto the attrs reply model by a constructor
generated once per class (``object.__new__`` and attribute stores). Whatever that
cannot read (a number where a string belongs, ``null`` in a list, Jackson's time
objects, ...) is read by the liberal reader of :mod:`._read`, record by record, so
both paths give the same model.
"""

from __future__ import annotations

import datetime as dt
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


def record_reader(model: type[T], what: str | None = None) -> Callable[[Any], T]:
    """A function reading one record of ``model``: from a raw view (fast) or a mapping
    of wire keys (liberal). It raises only
    :class:`~enkash_async.errors.UnexpectedResponseError`, naming the field path that
    cannot be read (or saying the record is not JSON, or nested too deeply)."""
    what = what or model.__name__
    struct, build = _struct_and_builder(model)
    # A float in a field typed Any (a Decimal's) arrives as _amount makes it.
    decode = msgspec.json.Decoder(struct, float_hook=_amount).decode

    def read(record: Any) -> T:
        try:
            if record.__class__ is Raw:
                try:
                    built: T = build(decode(record))
                    return built
                except _FALLBACK_ERRORS:
                    record = msgspec.json.decode(record)
            return record_from_wire(record, model, what)
        except (msgspec.DecodeError, RecursionError) as exc:
            # Not JSON, or nested so deeply that reading (or describing) it recursed too far.
            raise_unreadable(what, exc)

    return read


def raise_unreadable(what: str, exc: BaseException) -> typing.NoReturn:
    """Raise :class:`UnexpectedResponseError` for a record that is not JSON at all."""
    raise UnexpectedResponseError(f"reply is not a {what}: {exc}") from exc


_BUILT: dict[type[Any], tuple[type[msgspec.Struct], Callable[[Any], Any]]] = {}
_STRUCTS: dict[type[Any], type[msgspec.Struct]] = {}


def _struct_and_builder(model: type[Any]) -> tuple[type[msgspec.Struct], Callable[[Any], Any]]:
    """The liberal Struct of ``model`` and the function building ``model`` from it."""
    found = _BUILT.get(model)
    if found is not None:
        return found
    namespace: dict[str, Any] = {"__new": object.__new__}
    lines = [f"def build_{model.__name__}(s):"]
    struct = _emit(model, "s", "o", 0, namespace, lines)
    memos = sorted(namespace.pop(_MEMOS, ()))
    if memos:  # each date-time key's last text and value, starting empty
        lines.insert(1, "    " + " = ".join([*memos, "None"]))
    lines.append("    return o")
    builder = compile_function(f"build_{model.__name__}", "\n".join(lines) + "\n", namespace)
    _BUILT[model] = (struct, builder)
    return struct, builder


def _emit(
    model: type[Any], s: str, o: str, depth: int, namespace: dict[str, Any], lines: list[str]
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
            item_struct = _emit(item_model, item, f"o{depth + 1}", depth + 1, namespace, lines)
            lines += [
                f"{pad}        {items}[{at}] = o{depth + 1}",
                f"{pad}elif {items} is None:",
                f"{pad}    {items} = []",
                f"{pad}{o}.{attribute.name} = {items}",
            ]
            struct_fields.append((key, list[item_struct] | None, None))  # type: ignore[valid-type]
            continue
        text_flag = bool(attribute.metadata.get(TEXT_FLAG))
        hook = f"__{model.__name__}_{index}"
        struct_type, expression = _field_plan(hint, f"{s}.{key}", hook, namespace, text_flag)
        struct_fields.append((key, struct_type, None))
        lines.append(f"{pad}{o}.{attribute.name} = {expression}")
    struct = _STRUCTS.get(model)
    if struct is None:
        # In wire order (EnKash writes keys sorted), msgspec finds each key at its first guess.
        struct_fields.sort(key=lambda field: field[0])
        # gc=False: decoded from JSON, a Struct holds no cycle, and lives for one record.
        struct = msgspec.defstruct(f"Liberal{model.__name__}", struct_fields, gc=False)
        _STRUCTS[model] = struct
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


_FLAGS = {"true": True, "false": False}
_MEMOS = " memos"  # namespace key (no name can reach it) of the builder's memo locals
# Python 3.10's fromisoformat does not read EnKash's "Z": there the liberal reader parses.
_fromisoformat = dt.datetime.fromisoformat if sys.version_info >= (3, 11) else read_datetime
_PLAIN = {str | None: str, int | None: int, str: str, int: int}


def _field_plan(
    hint: Any, source: str, hook: str, namespace: dict[str, Any], text_flag: bool = False
) -> tuple[Any, str]:
    """A field's type in the liberal Struct, and the expression reading it off ``source``
    (``hook``: the name under which the expression finds its helper)."""
    if hint in _PLAIN:
        return hint, source
    if hint in (bool | None, bool):
        if not text_flag:
            # A flag EnKash writes as a boolean is copied; any other value sends the
            # record to the liberal reader.
            return hint, source
        namespace[hook] = read_bool
        namespace["__flags"] = _FLAGS
        # "true"/"false" without a call; anything else as the liberal reader reads it.
        expression = (
            f"(__flags[v] if (v := {source}) in __flags"
            f" else v if v is None or v.__class__ is bool else {hook}(v))"
        )
        return bool | str | None, expression
    if hint == dt.datetime | None:
        # Not msgspec's datetime: it rounds nanoseconds, where Python (and the liberal
        # reader) truncate. A string fromisoformat refuses sends the record to that reader.
        namespace[hook] = _fromisoformat
        # A key contact's times are mostly its customer's: the same text, parsed once a
        # record (the last text and value of each key, in the builder's locals).
        key = source.rpartition(".")[2]
        text, value = f"t_{key}", f"d_{key}"
        namespace.setdefault(_MEMOS, set()).update((text, value))
        expression = (
            f"(None if (v := {source}) is None else {value} if v == {text}"
            f" else ({value} := {hook}(({text} := v))))"
        )
        return str | None, expression
    if hint == Decimal | None:
        namespace[hook] = field_hook(hint)
        namespace["__Decimal"] = Decimal
        # Any, not Decimal: a float reads as the liberal reader reads it (``1e5`` ->
        # Decimal('100000.0')): most already as a Decimal by _amount, the others as a
        # float here when finite (v - v == 0), without a call.
        expression = (
            f"(v if (v := {source}) is None or v.__class__ is __Decimal"
            f" else __Decimal(repr(v)) if v.__class__ is float and v - v == 0 else {hook}(v))"
        )
        return Any, expression
    enum_type = enum_of(hint)
    if enum_type is not None:
        namespace[hook] = {member.value: member for member in enum_type}.get
        return str | None, f"(None if (v := {source}) is None else {hook}(v, v))"
    if hint == list[str]:
        return list[str] | None, f"([] if (v := {source}) is None else v)"
    if dt.time in typing.get_args(hint):
        namespace[hook] = dt.time.fromisoformat
        # A string fromisoformat refuses (kept as a string), or Jackson's time objects and
        # lists, send the record to the liberal reader.
        return str | None, f"(None if (v := {source}) is None else {hook}(v))"
    namespace[hook] = field_hook(hint)  # any other type: read as JSON, then liberally
    return Any, f"(None if (v := {source}) is None else {hook}(v, None))"
