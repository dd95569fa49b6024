"""Python names to EnKash's JSON names, read from each field's ``attrs`` metadata.

Python attributes are snake_case; on the wire they are camelCase, except where a field
declares its own wire name (EnKash spells ``mail_enabled`` and its kin in snake_case).
"""

from __future__ import annotations

from typing import Any, Final

import attrs

__all__ = ["REQUIRED_ON_WIRE", "TEXT_FLAG", "WIRE_NAME", "camel_case", "wire_field", "wire_name"]

#: Metadata key of a field whose wire name is not the camelCase of its Python name.
WIRE_NAME: Final = "enkash_async.wire_name"
#: Metadata key of a field EnKash requires although the Python model lets it default.
REQUIRED_ON_WIRE: Final = "enkash_async.required_on_wire"
#: Metadata key of a reply flag EnKash writes as a string (``"false"``), not a boolean.
TEXT_FLAG: Final = "enkash_async.text_flag"


def camel_case(name: str) -> str:
    """``legal_name`` -> ``legalName``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(attribute: attrs.Attribute[Any]) -> str:
    """EnKash's JSON key for a model field."""
    name: str | None = attribute.metadata.get(WIRE_NAME)
    return name if name is not None else camel_case(attribute.name)


def wire_field(
    *, wire: str | None = None, required: bool = False, text_flag: bool = False
) -> dict[str, Any]:
    """Field metadata for an irregular wire name, a key always required on the wire, or
    a flag EnKash writes as a string."""
    metadata: dict[str, Any] = {}
    if wire is not None:
        metadata[WIRE_NAME] = wire
    if required:
        metadata[REQUIRED_ON_WIRE] = True
    if text_flag:
        metadata[TEXT_FLAG] = True
    return metadata
