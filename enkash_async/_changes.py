"""What differs between a customer as EnKash holds it and as it should be: the one rule
the upsert and the sync use to decide what a PATCH sends.

Compared are the fields a client can write: the create fields the PATCH page also has,
and the PATCH-only ``assigned_agent`` and ``branch_codes`` when the caller gives them.
Reading is liberal, so values EnKash may write either way compare equal: ``None`` and
``""``, ``None`` and an empty list, a flag as a string (``"false"``) and as a boolean. A
field the wanted customer leaves empty clears a value EnKash has: the wanted customer is
the whole truth. Key contacts and reminders are compared on the fields EnKash returns
and, when they differ, sent whole (see :class:`~enkash_async.models.CustomerUpdate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from enkash_async._unset import UNSET, UnsetType
from enkash_async.models import (
    Customer,
    CustomerCreate,
    CustomerUpdate,
    KeyContact,
    KeyContactCreate,
    Reminder,
    ReminderCreate,
)

__all__ = ["customer_changes"]

# The create fields a PATCH can change (customer_key_contacts and reminders apart).
_SCALARS = (
    "account_number",
    "address",
    "contact_number",
    "ifsc",
    "legal_name",
    "pan_or_gstin",
    "pin_code",
    "state",
    "unique_ref_no",
)
# A key contact's fields that a reply carries and a create sets.
_CONTACT_FIELDS = ("name", "mobile", "email", "mail_enabled", "sms_enabled", "whatsapp_enabled")
_REMINDER_FIELDS = (
    "due_date_difference",
    "reminder_interval",
    "reminder_time",
    "reminder_type",
    "stage",
)


def customer_changes(
    current: Customer,
    wanted: CustomerCreate,
    *,
    assigned_agent: str | UnsetType | None = UNSET,
    branch_codes: Sequence[str] | UnsetType | None = UNSET,
) -> CustomerUpdate:
    """The :class:`~enkash_async.models.CustomerUpdate` that makes ``current`` equal to
    ``wanted`` (empty, and falsy, when they are equal already).

    ``assigned_agent`` and ``branch_codes``, which a create cannot set, are compared only
    when given. Raises :class:`~enkash_async.errors.ValidationError` if ``wanted`` holds
    a value a PATCH cannot send.
    """
    changes: dict[str, Any] = {}
    for name in _SCALARS:
        value = getattr(wanted, name)
        if _text(getattr(current, name)) != _text(value):
            changes[name] = value
    if assigned_agent is not UNSET and _text(current.assigned_agent) != _text(assigned_agent):
        changes["assigned_agent"] = assigned_agent
    if branch_codes is not UNSET and list(current.branch_codes or ()) != list(branch_codes or ()):
        changes["branch_codes"] = None if branch_codes is None else tuple(branch_codes)
    live = [c for c in current.customer_key_contacts if not _flag(c.deleted)]
    if [_contact(c) for c in live] != [_contact(c) for c in wanted.customer_key_contacts]:
        changes["customer_key_contacts"] = _carry_contact_ids(wanted.customer_key_contacts, live)
    wanted_reminders = wanted.customer_reminders or ()
    if [_reminder(r) for r in current.customer_reminders] != [
        _reminder(r) for r in wanted_reminders
    ]:
        changes["customer_reminders"] = _carry_reminder_ids(
            wanted_reminders, current.customer_reminders
        )
    return CustomerUpdate(**changes)


def _text(value: Any) -> Any:
    # EnKash may answer "" where nothing was set, or null: the same empty field.
    return None if value == "" else value


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _contact(contact: KeyContact | KeyContactCreate) -> tuple[Any, ...]:
    return tuple(
        _flag(v) if name.endswith("_enabled") else _text(v)
        for name in _CONTACT_FIELDS
        for v in (getattr(contact, name),)
    )


def _reminder(reminder: Reminder | ReminderCreate) -> tuple[Any, ...]:
    values = []
    for name in _REMINDER_FIELDS:
        value = getattr(reminder, name)
        values.append(getattr(value, "value", value))  # an enum member as its wire text
    return tuple(values)


def _carry_contact_ids(
    wanted: Sequence[KeyContactCreate], current: Sequence[KeyContact]
) -> tuple[KeyContactCreate, ...]:
    """The wanted contacts, each given the id EnKash holds for the contact in its place, so
    an EnKash that merges lists by id updates them in place rather than adding copies."""
    out = []
    for index, contact in enumerate(wanted):
        known = current[index].key_contact_person_id if index < len(current) else None
        if contact.key_contact_person_id is None and known:
            contact = _evolve(contact, key_contact_person_id=known)
        out.append(contact)
    return tuple(out)


def _carry_reminder_ids(
    wanted: Sequence[ReminderCreate], current: Sequence[Reminder]
) -> tuple[ReminderCreate, ...]:
    out = []
    for index, reminder in enumerate(wanted):
        known = current[index].customer_reminder_id if index < len(current) else None
        if reminder.customer_reminder_id is None and known:
            reminder = _evolve(reminder, customer_reminder_id=known)
        out.append(reminder)
    return tuple(out)


def _evolve(model: Any, **changes: Any) -> Any:
    return attrs.evolve(model, **changes)  # re-runs the model's checks
