"""Helpers of the command-line tests: running ``main`` beside a FakeEnkash, and reading
what a command wrote."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from enkash_async import CustomerCreate, EnkashClient
from enkash_async.cli import main
from enkash_async.sync import SyncTarget
from enkash_async.testing import FakeEnkash

Run = Callable[..., Awaitable[int]]
Start = Callable[..., Awaitable[FakeEnkash]]


def use(server: FakeEnkash, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at ``server`` through the ENKASH_* password-login variables."""
    credentials = server.credentials
    monkeypatch.setenv("ENKASH_BASE_URL", server.url)
    monkeypatch.setenv("ENKASH_CLIENT_ID", credentials.client_id)
    monkeypatch.setenv("ENKASH_CLIENT_SECRET", credentials.client_secret)
    monkeypatch.setenv("ENKASH_USERNAME", credentials.username)
    monkeypatch.setenv("ENKASH_PASSWORD", credentials.password)


async def run(*argv: str) -> int:
    """Run ``main(argv)``, the console script's entry point, in a worker thread (it calls
    ``asyncio.run``) while the test's loop serves the FakeEnkash; returns the exit code."""
    return await asyncio.to_thread(main, list(argv))


class RecordedBar:
    """What a command told its progress bar."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description = description
        self.totals = [total]
        self.advanced = 0

    @property
    def total(self) -> int | None:
        return self.totals[-1]

    def advance(self, amount: int = 1) -> None:
        self.advanced += amount

    def set_total(self, total: int | None) -> None:
        if total is not None:
            self.totals.append(total)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any] | str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def summary(text: str) -> dict[str, str]:
    """The demo's summary table as {measure: value}."""
    cells = (re.fullmatch(r"\s*│\s*(.+?)\s*│\s*(.*?)\s*│\s*", line) for line in text.splitlines())
    return {match[1]: match[2] for match in cells if match}


def number(text: str) -> int:
    return int(text.replace(",", ""))


def wire_row(i: int, *, ref: bool = True) -> dict[str, Any]:
    """A valid customer in EnKash's wire format; even rows have a second contact."""
    contacts = [
        {
            "name": f"Asha {i}",
            "legalName": f"Asha Rao {i}",
            "mobile": f"98{i:08d}",
            "deleted": False,
        },
    ]
    if i % 2 == 0:
        contacts.append(
            {
                "name": f"Ravi {i}",
                "legalName": f"Ravi Iyer {i}",
                "mobile": f"97{i:08d}",
                "deleted": False,
                "email": f"ravi{i}@example.com",
            }
        )
    row: dict[str, Any] = {"legalName": f"Row {i} Traders Pvt Ltd", "customerKeyContacts": contacts}
    if ref:
        row["uniqueRefNo"] = f"IMP-{i:04d}"
    return row


def csv_row(i: int) -> dict[str, str]:
    """``wire_row(i)`` as a CSV row of wire names and dotted paths."""
    wire = wire_row(i)
    row = {"uniqueRefNo": wire["uniqueRefNo"], "legalName": wire["legalName"]}
    for n, contact in enumerate(wire["customerKeyContacts"]):
        for field, value in contact.items():
            text = str(value).lower() if isinstance(value, bool) else value
            row[f"customerKeyContacts.{n}.{field}"] = text
    if i % 3 == 0:
        row["customerReminders.0.dueDateDifference"] = str(i)
        row["customerReminders.0.reminderType"] = "ONCE"
    return row


def stored_once(server: FakeEnkash, ref: str) -> dict[str, Any]:
    """The one customer ``server`` stores with ``ref``; fails if there are none or more."""
    found = server.find_by_unique_ref(ref)
    assert len(found) == 1, f"{ref} is stored {len(found)} times"
    return found[0]


def target_of(server: FakeEnkash) -> SyncTarget:
    """The sync target of the CLI pointed at ``server`` by ``use``."""
    return SyncTarget.for_user(server.url, server.credentials.username)


def checkpoint_states(path: Path) -> dict[str, str]:
    """{uniqueRefNo: state} of every ref in a checkpoint file."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT ref, state FROM refs ORDER BY ref"))


def checkpoint_ids(path: Path) -> list[str | None]:
    """The customer ids a checkpoint recorded, in ref order."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT customer_id FROM refs ORDER BY ref")]


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def no_traceback(*texts: str) -> bool:
    return not any("Traceback" in text for text in texts)


async def create_directly(server: FakeEnkash, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Create ``rows`` on ``server`` without the CLI (as an earlier run would have)."""
    async with EnkashClient(server.url, credentials=server.credentials) as client:
        created = [await client.customers.create(CustomerCreate.from_dict(r)) for r in rows]
    return [str(customer.customer_id) for customer in created]
