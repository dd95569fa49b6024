"""What a sync writes for one row: the row's fingerprint, and the changes that make
EnKash's record of the customer equal to the row.

The fields compared are every one a client can write: the create fields
(:func:`~enkash_async.customer_changes`), the PATCH-only ``assignedAgent`` and
``branchCodes`` when the row gives them, and ``active`` (activate/deactivate) when the
row gives it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import msgspec

from enkash_async import Customer, CustomerUpdate, EnkashClient, customer_changes
from enkash_async._unset import UNSET
from enkash_async._wire import wire_name
from enkash_async.sync._sources import SourceRow

__all__ = ["Change", "apply_change", "change_for", "row_fingerprint"]

# Python attribute name -> wire name of a PATCH's fields, for reports.
_WIRE = {field.name: wire_name(field) for field in attrs.fields(CustomerUpdate)}
_UNSET_MARK = "~unset"
_encode = msgspec.json.Encoder(order="sorted").encode


def row_fingerprint(row: SourceRow) -> str:
    """A digest of everything the row asks EnKash to hold: equal for equal rows, and
    (in practice) unequal whenever any written field differs. Hex, 32 characters."""
    if row.fingerprint is not None:
        return row.fingerprint
    assert row.customer is not None
    agent = _UNSET_MARK if row.assigned_agent is UNSET else row.assigned_agent
    branches = _UNSET_MARK if row.branch_codes is UNSET else row.branch_codes
    text = _encode([row.customer.to_dict(), row.active, agent, branches])
    return hashlib.blake2b(text, digest_size=16).hexdigest()


@attrs.frozen
class Change:
    """What makes ``current`` equal to a row: the PATCH (possibly empty) and whether to
    activate (True) or deactivate (False) it (None: leave it)."""

    update: CustomerUpdate
    active: bool | None = None

    @property
    def changed(self) -> tuple[str, ...]:
        """The wire names of the fields that change (and ``active``)."""
        names = tuple(_WIRE[name] for name in self.update.changed_fields())
        return names if self.active is None else (*names, "active")

    def __bool__(self) -> bool:
        return bool(self.update) or self.active is not None


def change_for(current: Customer, row: SourceRow, *, reactivate: bool = False) -> Change:
    """The :class:`Change` that makes EnKash's ``current`` record equal to ``row``.

    ``reactivate``: the sync deactivated this customer when the file stopped listing it;
    a row that lists it again, and says nothing of ``active``, makes it active again.
    Raises ``ValidationError`` when the row holds a value a PATCH cannot send.
    """
    assert row.customer is not None
    update = customer_changes(
        current, row.customer, assigned_agent=row.assigned_agent, branch_codes=row.branch_codes
    )
    wanted = row.active if row.active is not None else (True if reactivate else None)
    toggle = wanted if wanted is not None and bool(current.active) != wanted else None
    return Change(update, toggle)


async def apply_change(client: EnkashClient, customer_id: str, change: Change) -> None:
    """Send ``change``: one PATCH with only the differences, then activate or deactivate.
    Raises like ``customers.update``."""
    if change.update:
        await client.customers.update(customer_id, change.update)
    if change.active is not None:
        toggle: Any = client.customers.activate if change.active else client.customers.deactivate
        await toggle(customer_id)
