"""``UNSET``: a field left out of a request, as opposed to ``None``, sent as JSON null.

EnKash's PATCH fields are JsonNullable: a key absent leaves the value as it is, ``null``
clears it. One sentinel, shared by the models, their checks and the wire writer.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

__all__ = ["UNSET", "Unset", "UnsetType"]


class Unset(enum.Enum):
    """The type of :data:`UNSET` (an enum of one member, so type checkers can narrow it)."""

    UNSET = "UNSET"

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"


#: A field left out of the request: EnKash keeps its value.
UNSET: Final = Unset.UNSET

UnsetType = Literal[Unset.UNSET]
