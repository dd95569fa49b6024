"""``customers get|update|activate|deactivate|delete``: one customer, by its EnKash id."""

from __future__ import annotations

import argparse
from typing import Any

from enkash_async import CustomerUpdate, ValidationError
from enkash_async._customers import _check_customer_id
from enkash_async.cli._connect import add_connection_flags, connect
from enkash_async.cli._ui import CommandError, err, json_text
from enkash_async.sync import wire_path
from enkash_async.sync._sources import load_json_document

__all__ = ["register"]


def register(actions: Any) -> None:
    """Add ``get``, ``update``, ``activate``, ``deactivate`` and ``delete`` to ``actions``."""
    commands = {
        "get": "print one customer as JSON (EnKash's search by customerIds)",
        "update": "PATCH one customer with the fields of a JSON object (null clears a field)",
        "activate": "mark one customer active",
        "deactivate": "mark one customer inactive (the path is inferred from activate's)",
        "delete": "delete one customer",
    }
    for name, summary in commands.items():
        sub = actions.add_parser(name, help=summary, description=summary[0].upper() + summary[1:])
        sub.add_argument("customer_id", metavar="CUSTOMER_ID", help="EnKash's id, KC + 14")
        if name == "update":
            sub.add_argument(
                "--json",
                required=True,
                metavar="FILE",
                help="a JSON object of PATCH fields in wire names (absent: kept, null: "
                "cleared; lists are sent whole), or - for stdin",
            )
        add_connection_flags(sub)
        sub.set_defaults(handler=_run, lifecycle=name)


async def _run(args: argparse.Namespace) -> int:
    changes = _read_update(args.json) if args.lifecycle == "update" else None
    try:
        _check_customer_id(args.customer_id)  # before any connection is made
    except ValidationError as exc:
        raise CommandError(f"CUSTOMER_ID: {exc.errors[0].message}") from None
    async with connect(args) as connection:
        customers = connection.client.customers
        if args.lifecycle == "get":
            _print(await customers.get(args.customer_id))
        elif args.lifecycle == "update":
            assert changes is not None
            updated = await customers.update(args.customer_id, changes)
            sent = ", ".join(wire_path(n, dotted=False) for n in changes.changed_fields())
            err(f"updated {args.customer_id}: {sent or 'nothing to send'}")
            _print(updated if updated is not None else await customers.get(args.customer_id))
        else:
            await getattr(customers, args.lifecycle)(args.customer_id)
            err(f"{args.lifecycle}d {args.customer_id}")
    return 0


def _read_update(source: str) -> CustomerUpdate:
    try:
        data = load_json_document(source)
    except OSError as exc:
        name = "stdin" if source == "-" else source
        raise CommandError(f"{name}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"the changes must be a JSON object, got {type(data).__name__}")
    try:
        return CustomerUpdate.from_dict(data)
    except ValidationError as exc:
        lines = [f"  {wire_path(e.path, dotted=False)}: {e.message}" for e in exc.errors]
        raise CommandError("the changes are invalid:\n" + "\n".join(lines)) from None


def _print(customer: Any) -> None:
    print(json_text(customer.to_dict(), indent=2))
