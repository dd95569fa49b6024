"""Stand-ins, with the sync core's shapes, until that core lands: rows, outcomes, ``sync_rows``.

The distributed sync calls only :func:`read_file` and :func:`sync_rows` of this module,
each from one small function in ``_saq.py``; when ``enkash_async.sync`` exports them,
those two imports change and this module goes.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from enkash_async import CustomerCreate, EnkashClient, EnkashError, ValidationError
from enkash_async.cli._files import InputError, read_rows
from enkash_async.sync._checkpoint import CheckpointStore, RefState

__all__ = ["Outcome", "SourceRow", "SyncOutcome", "read_file", "sync_rows"]


class Outcome(str, enum.Enum):
    """How a row ended."""

    CREATED = "created"
    FOUND = "found"
    REJECTED = "rejected"
    FAILED = "failed"


@attrs.frozen
class SourceRow:
    """One record of a source: its line, the customer it makes, or why it is invalid."""

    line: int
    customer: CustomerCreate | None
    problems: tuple[str, ...] = ()
    ignored: int = 0


@attrs.frozen
class SyncOutcome:
    """The outcome of one row."""

    line: int
    ref: str | None
    outcome: Outcome
    customer_id: str | None = None
    reasons: tuple[str, ...] = ()
    error: EnkashError | None = None
    detail: str = ""


def read_file(path: str) -> Iterator[SourceRow]:
    """The rows of a CSV or JSONL file (line = row number here)."""
    for number, item in read_rows(path):
        if isinstance(item, InputError):
            yield SourceRow(number, None, (item.message,))
            continue
        try:
            yield SourceRow(number, CustomerCreate.from_dict(item))
        except ValidationError as exc:
            yield SourceRow(number, None, tuple(str(e) for e in exc.errors))


async def sync_rows(
    rows: Iterable[SourceRow],
    *,
    client: EnkashClient,
    checkpoint: CheckpointStore,
    concurrency: int = 32,
    on_outcome: Callable[[SyncOutcome], None] | None = None,
) -> None:
    """Each valid row's customer made to exist once; one outcome per row to ``on_outcome``."""
    report = on_outcome or (lambda outcome: None)
    by_ref: dict[str, list[SourceRow]] = {}
    for row in rows:
        ref = row.customer.unique_ref_no if row.customer is not None else None
        if row.customer is None or ref is None:
            reasons = row.problems or ("uniqueRefNo: is required for a sync",)
            report(SyncOutcome(row.line, ref, Outcome.REJECTED, reasons=reasons))
            continue
        by_ref.setdefault(ref, []).append(row)
    refs = list(by_ref)
    states = await checkpoint.states(refs)
    await checkpoint.mark_intended([ref for ref in refs if ref not in states])
    slots = asyncio.Semaphore(concurrency)

    async def one(ref: str) -> None:
        first, *rest = by_ref[ref]
        async with slots:
            outcome = await _settle(client, checkpoint, first, ref, states.get(ref))
        report(outcome)
        for row in rest:
            settled = outcome.outcome in (Outcome.CREATED, Outcome.FOUND)
            kind = Outcome.FOUND if settled else Outcome.FAILED
            report(SyncOutcome(row.line, ref, kind, outcome.customer_id, error=outcome.error))

    await asyncio.gather(*(one(ref) for ref in refs))


async def _settle(
    client: EnkashClient,
    checkpoint: CheckpointStore,
    row: SourceRow,
    ref: str,
    state: RefState | None,
) -> SyncOutcome:
    if state is RefState.DONE:
        return SyncOutcome(row.line, ref, Outcome.FOUND, detail="checkpoint")
    assert row.customer is not None
    try:
        if state is RefState.INTENDED:
            reason = EnkashError(f"an earlier run marked {ref!r} as about to be created")
            found: Any = await client.customers._find_by_ref(ref, reason)
            if found is not None:
                await checkpoint.mark_done(ref, found.customer_id)
                return SyncOutcome(row.line, ref, Outcome.FOUND, found.customer_id)
        created = await client.customers.create(row.customer)
    except EnkashError as exc:
        return SyncOutcome(row.line, ref, Outcome.FAILED, error=exc)
    await checkpoint.mark_done(ref, created.customer_id)
    return SyncOutcome(row.line, ref, Outcome.CREATED, created.customer_id)
