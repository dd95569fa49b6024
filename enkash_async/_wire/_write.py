"""Writing models as EnKash's JSON: wire names, JSON values, unset optional fields left out.

Hooks are found by predicate (any enum, any attrs class), so a new model or enum needs
no registration here. Each model's writer is generated once from its fields (plain values
copied, nested models and tuples written by their own writers, anything else through the
cattrs converter), since a create pays for it on every request.
"""

from __future__ import annotations

import datetime as dt
import enum
import typing
from decimal import Decimal
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from enkash_async._unset import UNSET
from enkash_async._wire._codegen import compile_function
from enkash_async._wire._names import wire_name
from enkash_async._wire._read import members

__all__ = ["to_wire", "write_datetime"]


def write_datetime(value: dt.datetime) -> str:
    """A datetime as EnKash writes one: UTC with a ``Z``, microseconds only when set."""
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


def _is_enum(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, enum.Enum)


def _is_tuple_type(type_: Any) -> bool:
    return typing.get_origin(type_) is tuple


def _build_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(dt.datetime, write_datetime)
    converter.register_unstructure_hook(dt.time, _write_time)
    converter.register_unstructure_hook(Decimal, _write_decimal)
    converter.register_unstructure_hook_func(
        _is_tuple_type,
        lambda items: [converter.unstructure(item) for item in items],
    )

    def model_hook(model: type[Any]) -> Any:
        for hint in typing.get_type_hints(model).values():
            for member in members(hint):
                if _is_enum(member):
                    # Each by class: a str-valued enum would dispatch as a str, stay a member.
                    converter.register_unstructure_hook(member, _enum_value)
        # Unset optional fields are left out; required and non-None defaults are always sent.
        # A field defaulting to UNSET (a PATCH field) is left out only when UNSET: None is null.
        overrides = {
            a.name: override(
                rename=wire_name(a), omit_if_default=a.default is None or a.default is UNSET
            )
            for a in attrs.fields(model)
        }
        return make_dict_unstructure_fn(model, converter, **overrides)  # type: ignore[arg-type]

    converter.register_unstructure_hook_factory(attrs.has, model_hook)
    return converter


_converter = _build_converter()

# Values JSON takes as they are: copied, never converted.
_PLAIN: tuple[type, ...] = (str, int, bool, float)
_WRITERS: dict[type, Any] = {}


def _is_unset_literal(member: Any) -> bool:
    return typing.get_origin(member) is typing.Literal and typing.get_args(member) == (UNSET,)


def _value_code(hint: Any, value: str, namespace: dict[str, Any]) -> str:
    """Python source writing ``value`` (of type ``hint``, None and UNSET aside) as JSON."""
    kinds = [m for m in members(hint) if m is not type(None) and not _is_unset_literal(m)]
    if kinds and all(kind in _PLAIN for kind in kinds):
        return value
    if len(kinds) == 1:
        (kind,) = kinds
        if isinstance(kind, type) and attrs.has(kind):
            namespace[f"_write_{kind.__name__}"] = _writer_of(kind)
            return f"_write_{kind.__name__}({value})"
        if _is_enum(kind):
            namespace["_Enum"] = enum.Enum
            return f"({value}.value if isinstance({value}, _Enum) else _unstructure({value}))"
        if _is_tuple_type(kind):
            args = typing.get_args(kind)
            if len(args) == 2 and args[1] is Ellipsis:
                item = _value_code(args[0], "item", namespace)
                return f"list({value})" if item == "item" else f"[{item} for item in {value}]"
    return f"_unstructure({value})"  # anything rarer: the converter's own dispatch


def _writer_of(model: type[Any]) -> Any:
    """The generated writer of ``model``: a dict of wire names, optional fields left out
    as the converter leaves them out (None and UNSET defaults)."""
    writer = _WRITERS.get(model)
    if writer is not None:
        return writer
    _converter.get_unstructure_hook(model)  # registers the model's enums with the converter
    namespace: dict[str, Any] = {"_unstructure": _converter.unstructure, "UNSET": UNSET}
    hints = typing.get_type_hints(model)
    lines = [f"def write_{model.__name__}(model):", "    out = {}"]
    for index, field in enumerate(attrs.fields(model)):
        local = f"v{index}"
        code = _value_code(hints[field.name], local, namespace)
        lines.append(f"    {local} = model.{field.name}")
        key = repr(wire_name(field))
        if field.default is None:
            lines += [f"    if {local} is not None:", f"        out[{key}] = {code}"]
        elif field.default is UNSET:
            lines += [
                f"    if {local} is not UNSET:",
                f"        out[{key}] = None if {local} is None else {code}",
            ]
        else:
            lines.append(f"    out[{key}] = None if {local} is None else {code}")
    lines.append("    return out")
    writer = compile_function(f"write_{model.__name__}", "\n".join(lines) + "\n", namespace)
    _WRITERS[model] = writer
    return writer


def to_wire(model: Any) -> dict[str, Any]:
    """A model as EnKash's JSON object (wire names, JSON values)."""
    result: dict[str, Any] = _writer_of(type(model))(model)
    return result
