"""Building request models strictly from wire JSON, every problem reported with its path."""

from __future__ import annotations

import datetime as dt
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from enkash_async._wire._names import REQUIRED_ON_WIRE, wire_name
from enkash_async._wire._read import members, read_datetime
from enkash_async.errors import FieldError, ValidationError, _join_path

__all__ = ["request_from_wire"]

T = TypeVar("T")


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
            for arg in members(hints[a.name]):
                if typing.get_origin(arg) is tuple and attrs.has(typing.get_args(arg)[0]):
                    nested[a.name] = typing.get_args(arg)[0]
        return cls(
            fields={wire_name(a): a for a in attrs.fields(model)},
            nested=nested,
            moments=frozenset(
                a.name for a in attrs.fields(model) if dt.datetime in members(hints[a.name])
            ),
            required=tuple(
                a.name
                for a in attrs.fields(model)
                if a.default is attrs.NOTHING or a.metadata.get(REQUIRED_ON_WIRE)
            ),
        )


_SHAPES: dict[type[Any], _RequestShape] = {}


def _shape(model: type[Any]) -> _RequestShape:
    shape = _SHAPES.get(model)
    if shape is None:
        shape = _SHAPES[model] = _RequestShape.of(model)
    return shape


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
    shape = _shape(model)
    problems: list[FieldError] = []
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        attribute = shape.fields.get(key)
        if attribute is None:
            problems.append(
                FieldError(_join_path(path, str(key)), "is not a field EnKash documents")
            )
            continue
        name = attribute.name
        if name in shape.nested and isinstance(value, list):
            items = []
            for index, item in enumerate(value):
                built, item_problems = _build(
                    item, shape.nested[name], _join_path(path, f"{name}[{index}]")
                )
                problems.extend(item_problems)
                if built is not None:
                    items.append(built)
            value = items
        elif name in shape.moments and isinstance(value, str):
            parsed = read_datetime(value)
            if parsed is None:
                problem = f"must be an ISO date-time; got {value!r}"
                problems.append(FieldError(_join_path(path, name), problem))
                continue
            value = parsed
        kwargs[name] = value
    for name in shape.required:
        kwargs.setdefault(name, None)  # the model's own check says it is required
    try:
        return model(**kwargs), problems
    except ValidationError as exc:
        return None, problems + list(exc.prefixed(path).errors)
