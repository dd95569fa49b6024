"""The sync core: make each row's customer exist in EnKash exactly once, by ``unique_ref_no``.

:func:`sync_rows` is the one code path the CLI import and the distributed workers run.
It knows no files, terminals or queues: it takes rows, a client and a
:class:`CheckpointStore`, and reports one :class:`SyncOutcome` per row through
``on_outcome`` the moment it is known.

Per ref: a ref the checkpoint has as done is ``found`` without a request; the intent of
any other is claimed (durably): a ref no one intended is created, then marked done; one
an earlier or dead owner intended (it may have been sent) is looked up by exact
``unique_ref_no`` first; one another live owner (a concurrent run) holds waits, unsent,
until that owner finishes it or dies. A ref
repeated in the input is sent once; its later rows wait for the first and share its
fate. :func:`plan_rows` is the dry run: no create, one pass over EnKash's customers.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import pickle
import sqlite3
import time
import zlib
from collections.abc import AsyncIterable, Awaitable, Callable, Container, Iterable
from typing import Any

import attrs

from enkash_async import (
    AmbiguousCreateError,
    CreateResult,
    Customer,
    CustomerCreate,
    CustomerSearch,
    CustomerUpdate,
    EnkashClient,
    EnkashError,
    FieldError,
    NotFoundError,
    ValidationError,
)
from enkash_async._hooks import Observer
from enkash_async._unset import UNSET
from enkash_async.sync._checkpoint import DEACTIVATED, CheckpointStore, Claim
from enkash_async.sync._compare import Change, apply_change, change_for, row_fingerprint
from enkash_async.sync._sources import SourceRow, iter_rows, wire_path

__all__ = [
    "DeactivationRefusedError",
    "KnownRefs",
    "Outcome",
    "SyncOutcome",
    "SyncSummary",
    "deactivate_missing",
    "find_by_ref",
    "plan_rows",
    "sync_rows",
]

Rows = Iterable[SourceRow | CustomerCreate] | AsyncIterable[SourceRow | CustomerCreate]
# Rows read and checked against the checkpoint at once: one read, one claim commit.
_BATCH = 1000
# Rows whose intent another live owner holds, waiting at once (beyond them, reading waits).
_HELD_MAX = 4096
# Seconds between asks for the intents other owners hold.
_HELD_POLL = 0.5


class Outcome(str, enum.Enum):
    """How a row ended."""

    CREATED = "created"
    #: EnKash had it and it was PATCHed (or activated/deactivated); ``changed`` says what.
    UPDATED = "updated"
    #: EnKash had it exactly as the row says: nothing was sent for it.
    UNCHANGED = "unchanged"
    #: ``create_only``: EnKash already had it (an earlier run, another worker, or a
    #: reconciled create); it was not compared.
    FOUND = "found"
    #: Invalid, never sent; ``reasons`` says every why.
    REJECTED = "rejected"
    #: Sent or looked up, and it failed; ``error`` says how.
    FAILED = "failed"
    #: Dry run only: a real run would create it.
    WOULD_CREATE = "would_create"
    #: Dry run only: a real run would PATCH ``changed``.
    WOULD_UPDATE = "would_update"
    #: ``deactivate_missing``: the file no longer lists it, and it was deactivated.
    DEACTIVATED = "deactivated"
    #: Dry run of ``deactivate_missing``: a real run would deactivate it.
    WOULD_DEACTIVATE = "would_deactivate"


@attrs.frozen
class SyncOutcome:
    """The outcome of one row: its ``line``, ``ref``, what became of it, the customer id
    when EnKash has it, every reason a row was rejected, the error it failed with, or the
    wire names of the fields an update ``changed`` (``active`` among them when toggled).
    A deactivation of a customer the file no longer lists has ``line`` 0."""

    line: int
    ref: str | None
    outcome: Outcome
    customer_id: str | None = None
    reasons: tuple[str, ...] = ()
    error: EnkashError | None = None
    #: How the row came to be found or left: "checkpoint", "lookup", "reconciled",
    #: "in EnKash", "another run", or "same uniqueRefNo as line N".
    detail: str = ""
    changed: tuple[str, ...] = ()


# The outcomes that are rows of the input (a deactivation is not).
_ROW_OUTCOMES = frozenset(Outcome) - {Outcome.DEACTIVATED, Outcome.WOULD_DEACTIVATE}


@attrs.define
class SyncSummary:
    """Counts of a sync (or dry run) so far, and its elapsed seconds."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    found: int = 0
    rejected: int = 0
    failed: int = 0
    would_create: int = 0
    would_update: int = 0
    deactivated: int = 0
    would_deactivate: int = 0
    #: Read-only fields (``customerId``, timestamps) the rows carried and the sync ignored.
    ignored_fields: int = 0
    #: The same, per column (``customerKeyContacts.0.createdOn``): how many cells it had.
    ignored_columns: dict[str, int] = attrs.Factory(dict)
    #: Per field (wire name), how many rows were updated (or would be) with it changed.
    changed_fields: dict[str, int] = attrs.Factory(dict)
    elapsed: float = 0.0

    @property
    def rows(self) -> int:
        """Rows with an outcome (deactivations of customers the input lacks apart)."""
        return sum(getattr(self, outcome.value) for outcome in _ROW_OUTCOMES)

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0

    def count(self, outcome: SyncOutcome) -> None:
        """Add ``outcome`` to the counts."""
        name = outcome.outcome.value
        setattr(self, name, getattr(self, name) + 1)
        for field in outcome.changed:
            self.changed_fields[field] = self.changed_fields.get(field, 0) + 1

    def ignore(self, row: SourceRow) -> None:
        """Add the read-only fields ``row`` carried to the counts."""
        self.ignored_fields += row.ignored
        columns = self.ignored_columns
        for name in row.ignored_names:
            columns[name] = columns.get(name, 0) + 1


OnOutcome = Callable[[SyncOutcome], None]


async def find_by_ref(client: EnkashClient, ref: str) -> Customer | None:
    """The customer EnKash has with exactly ``unique_ref_no == ref``, or None when it
    surely has none. Raises ``AmbiguousCreateError`` (its cause the lookup's error)
    when that cannot be told.

    This is the client's own reconciliation lookup (``customers.find_by_unique_ref``),
    so a sync and a create agree on what "EnKash has it" means.
    """
    try:
        return await client.customers.find_by_unique_ref(ref)
    except EnkashError as exc:
        reason = EnkashError(f"an earlier run marked {ref!r} as about to be created")
        raise AmbiguousCreateError(
            f"{ref!r} may have been created by an earlier run, and looking it up failed "
            f"({exc}); the customer may or may not exist",
            cause=reason,
        ) from exc


class KnownRefs:
    """A set of ``unique_ref_no`` on disk (a private temporary SQLite database), so a
    million refs cost no memory; :meth:`load` fills it from EnKash in one search pass,
    keeping each customer's record (compressed) for a sync to compare rows with."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)  # "" is a temporary file
        self._db.execute("CREATE TABLE refs (ref TEXT PRIMARY KEY, record BLOB) WITHOUT ROWID")
        self.loaded = 0

    async def load(
        self,
        client: EnkashClient,
        *,
        page_size: int = 1000,
        on_page: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Add the ref and record of every customer EnKash has (one streamed search);
        returns how many customers were read. ``on_page(customers in the page, EnKash's
        total)`` is called after each page. Raises like ``customers.search``."""
        async for page in client.customers.search(page_size=page_size).pages():
            self._db.executemany(
                "INSERT OR IGNORE INTO refs VALUES (?, ?)",
                [(c.unique_ref_no, _pack(c)) for c in page.items if c.unique_ref_no],
            )
            self.loaded += len(page)
            if on_page is not None:
                on_page(len(page), page.records_count)
        return self.loaded

    def add_many(self, refs: list[tuple[str]]) -> None:
        """Add refs (each a 1-tuple), without records."""
        self._db.executemany("INSERT OR IGNORE INTO refs (ref) VALUES (?)", refs)

    def add(self, ref: str) -> bool:
        """Add ``ref``; False when it was there already."""
        added = self._db.execute("INSERT OR IGNORE INTO refs (ref) VALUES (?)", (ref,))
        return added.rowcount == 1

    def record(self, ref: str) -> Customer | None:
        """The customer :meth:`load` read for ``ref``, or None."""
        row = self._db.execute("SELECT record FROM refs WHERE ref = ?", (ref,)).fetchone()
        return None if row is None or row[0] is None else _unpack(row[0])

    def __contains__(self, ref: object) -> bool:
        row = self._db.execute("SELECT 1 FROM refs WHERE ref = ?", (ref,)).fetchone()
        return row is not None

    def close(self) -> None:
        """Delete the temporary database."""
        self._db.close()


def _pack(customer: Customer) -> bytes:
    # This process's own temporary file, read back only by it: pickle is exact and fast.
    return zlib.compress(pickle.dumps(customer, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _unpack(data: bytes) -> Customer:
    customer: Customer = pickle.loads(zlib.decompress(data))
    return customer


class _Seen:
    """The refs of this input so far, on disk: the line and fingerprint of each ref's
    first row, to tell a repeat with the same data from one with other data."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.execute(
            "CREATE TABLE seen (ref TEXT PRIMARY KEY, line INTEGER, fp TEXT, ok INTEGER) "
            "WITHOUT ROWID"
        )

    def first(self, refs: list[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        for start in range(0, len(refs), 500):
            chunk = refs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT ref, line, fp FROM seen WHERE ref IN ({marks})", chunk)
            found.update((ref, (line, fp)) for ref, line, fp in rows)
        return found

    def add(self, rows: list[tuple[str, int, str]]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO seen (ref, line, fp) VALUES (?, ?, ?)", rows)

    def add_settled(self, rows: list[tuple[str, int, str, bool]]) -> None:
        """Add first rows that have ended already."""
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)", rows)

    def settled(self, ref: str, line: int, ok: bool) -> None:
        """Record how the first row of ``ref`` (on ``line``) ended."""
        self._db.execute("UPDATE seen SET ok=? WHERE ref=? AND line=?", (ok, ref, line))

    def ok(self, ref: str) -> bool | None:
        row = self._db.execute("SELECT ok FROM seen WHERE ref=?", (ref,)).fetchone()
        return None if row is None or row[0] is None else bool(row[0])

    def close(self) -> None:
        self._db.close()


def _repeat(row: SourceRow, ref: str, first_line: int) -> SyncOutcome:
    """A row whose ref an earlier row of the input gave other data."""
    return SyncOutcome(
        row.line,
        ref,
        Outcome.REJECTED,
        reasons=(
            f"uniqueRefNo: {ref!r} is also on line {first_line}, with other data; one "
            f"reference is one customer, so line {row.line} was not sent (line "
            f"{first_line} was): keep one of the two lines",
        ),
    )


def _rejected_ref(row: SourceRow) -> SyncOutcome | None:
    if row.customer is None:  # ref: what the row holds, for the report
        return SyncOutcome(row.line, row.ref, Outcome.REJECTED, reasons=row.problems)
    if not row.customer.unique_ref_no:
        return SyncOutcome(
            row.line,
            None,
            Outcome.REJECTED,
            reasons=(
                "uniqueRefNo: is required for a sync (it is how a rerun knows the customer exists)",
            ),
        )
    return None


async def plan_rows(
    rows: Rows,
    *,
    client: EnkashClient | None = None,
    known_refs: KnownRefs | None = None,
    on_outcome: OnOutcome | None = None,
    create_only: bool = False,
    listed: KnownRefs | None = None,
) -> SyncSummary:
    """The dry run of :func:`sync_rows`: send nothing, report per row ``would_create``,
    ``would_update`` (with the fields that would change), ``unchanged`` or ``rejected``
    (invalid, or repeating an earlier row's ref with other data). With ``create_only``
    a ref EnKash has is ``found``, uncompared.

    EnKash's customers are streamed once to learn what exists (pass ``known_refs``
    already loaded to skip that). The ref of every row is added to ``listed`` when
    given (for :func:`deactivate_missing`). Raises like ``customers.search``.
    """
    started = time.monotonic()
    summary = SyncSummary()
    existing = known_refs
    if existing is None:
        if client is None:
            raise ValidationError([FieldError("client", "pass a client or known_refs")])
        existing = KnownRefs()
        await existing.load(client)
    seen = _Seen()
    try:
        async for read in iter_rows(rows):
            row = read.built()
            summary.ignore(row)
            if listed is not None and row.ref:
                listed.add(row.ref)
            outcome = _rejected_ref(row) or _plan_row(row, existing, seen, create_only)
            summary.count(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    finally:
        seen.close()
        if known_refs is None:
            existing.close()
        summary.elapsed = time.monotonic() - started
    return summary


def _plan_row(row: SourceRow, existing: KnownRefs, seen: _Seen, create_only: bool) -> SyncOutcome:
    ref = row.customer.unique_ref_no  # type: ignore[union-attr]
    assert ref is not None
    fingerprint = row_fingerprint(row)
    first = seen.first([ref]).get(ref)
    if first is not None:
        if create_only:
            return SyncOutcome(row.line, ref, Outcome.FOUND, detail="repeats an earlier row's ref")
        if first[1] != fingerprint:
            return _repeat(row, ref, first[0])
        detail = f"same uniqueRefNo as line {first[0]}"
        return SyncOutcome(row.line, ref, Outcome.UNCHANGED, detail=detail)
    seen.add([(ref, row.line, fingerprint)])
    if ref not in existing:
        return SyncOutcome(row.line, ref, Outcome.WOULD_CREATE)
    current = existing.record(ref)
    if create_only or current is None:
        return SyncOutcome(row.line, ref, Outcome.FOUND, detail="in EnKash")
    try:
        change = change_for(current, row)
    except ValidationError as exc:
        return SyncOutcome(row.line, ref, Outcome.REJECTED, reasons=_reasons(exc))
    if not change:
        return SyncOutcome(
            row.line, ref, Outcome.UNCHANGED, current.customer_id, detail="in EnKash"
        )
    return SyncOutcome(
        row.line, ref, Outcome.WOULD_UPDATE, current.customer_id, changed=change.changed
    )


def _reasons(exc: ValidationError) -> tuple[str, ...]:
    return tuple(f"{wire_path(e.path, dotted=False)}: {e.message}" for e in exc.errors)


async def sync_rows(
    rows: Rows,
    *,
    client: EnkashClient,
    checkpoint: CheckpointStore,
    concurrency: int = 32,
    on_outcome: OnOutcome | None = None,
    known_refs: KnownRefs | None = None,
    create_only: bool = False,
    listed: KnownRefs | None = None,
) -> SyncSummary:
    """Make EnKash hold the customer of every valid row, each exactly once; return the
    counts.

    ``rows`` are :class:`SourceRow`s (from :func:`read_file`) or ``CustomerCreate``s, from
    an iterable or async iterable read lazily. Each row gets exactly one outcome, passed to
    ``on_outcome`` (a plain function, called on the event loop) the moment it is known:
    ``created``; ``updated`` (EnKash had it otherwise: one PATCH with only the fields that
    differ, and an activate or deactivate when the row's ``active`` differs);
    ``unchanged`` (nothing sent: the checkpoint's fingerprint of what was last written
    equals the row's, or EnKash's record does); ``rejected`` (invalid, without
    ``unique_ref_no``, or repeating an earlier row's ref with other data; unsent) or
    ``failed``. With ``create_only`` a customer EnKash has is ``found``, never compared
    or updated (the sync before upserts).

    Up to ``concurrency`` creates, PATCHes or lookups run at once (within the client's own
    limits); records a changed row is compared with are read by ``customerIds``, many per
    search. ``known_refs`` (loaded from EnKash) lets rows be compared with no read at all.
    The ref of every row is added to ``listed`` when given (for
    :func:`deactivate_missing`).

    Raises what ``checkpoint`` raises (nothing is sent that could not be recorded as
    intended first), and ``ValidationError`` for a bad ``concurrency``. A row's own
    failure never raises.
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValidationError([FieldError("concurrency", "must be an integer >= 1")])
    run = _Run(client, checkpoint, concurrency, on_outcome, known_refs, create_only, listed)
    try:
        await run.feed(rows)
    finally:
        run.seen.close()
        run.summary.elapsed = time.monotonic() - run.started
    return run.summary


@attrs.define
class _Work:
    row: SourceRow
    ref: str
    lookup_first: bool
    done: asyncio.Future[SyncOutcome]
    fingerprint: str = ""
    #: The checkpoint has the ref as done: its customer id, and whether the sync
    #: deactivated it as missing (so that listing it again makes it active).
    customer_id: str | None = None
    reactivate: bool = False
    #: How the customer came to be known: "checkpoint", or "another run" (held).
    detail: str = "checkpoint"


# Records read by one search with a customerIds filter.
_READ_BATCH = 100


class _Run:
    def __init__(
        self,
        client: EnkashClient,
        checkpoint: CheckpointStore,
        concurrency: int,
        on_outcome: OnOutcome | None,
        known_refs: KnownRefs | None,
        create_only: bool = False,
        listed: KnownRefs | None = None,
    ) -> None:
        self.client = client
        self.checkpoint = checkpoint
        self.on_outcome = on_outcome
        self.known_refs = known_refs
        self.create_only = create_only
        self.listed = listed
        self.seen = _Seen()
        self.summary = SyncSummary()
        self.started = time.monotonic()
        self.slots = asyncio.Semaphore(concurrency)
        # Searches by customerIds in flight at once (each one for up to _READ_BATCH rows).
        self.reads = asyncio.Semaphore(max(1, concurrency // 8))
        self.tasks: set[asyncio.Task[None]] = set()
        # The ref of every row sent or waiting in this run, until its outcome is recorded.
        self.in_flight: dict[str, tuple[int, asyncio.Future[SyncOutcome]]] = {}
        # One wait of the client's settle_time before the first lookup of a ref an earlier
        # run intended: a create it sent just before it died may still be committing.
        self.settling: asyncio.Future[None] | None = None
        # The first error a row's task raised (a checkpoint that cannot be written): it
        # ends the run, since nothing may be sent that could not be recorded.
        self.failure: BaseException | None = None
        # Rows whose intent another live owner holds, by ref, and the task asking after them.
        self.held: dict[str, _Work] = {}
        self.held_room = asyncio.Semaphore(_HELD_MAX)
        self.watcher: asyncio.Task[None] | None = None

    def report(self, outcome: SyncOutcome) -> None:
        if not self.create_only and outcome.ref and outcome.outcome in _ENDS:
            self.seen.settled(outcome.ref, outcome.line, outcome.outcome in _SETTLED)
        self.summary.count(outcome)
        Observer.count_row(outcome.outcome.value)  # a worker's sync.chunk batch counts it
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    async def feed(self, rows: Rows) -> None:
        batch: list[SourceRow] = []
        try:
            async for row in iter_rows(rows):
                batch.append(row)
                if len(batch) >= _BATCH:
                    await self.dispatch(batch)
                    batch = []
            await self.dispatch(batch)
            while self.tasks and self.failure is None:
                await asyncio.wait(list(self.tasks), return_when=asyncio.FIRST_EXCEPTION)
            self.raise_failure()
        finally:
            for item in self.held.values():
                item.done.cancel()
            if self.settling is not None:
                self.settling.cancel()
            for task in self.tasks:
                task.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    async def dispatch(self, batch: list[SourceRow]) -> None:
        """Settle what a batch can without a request, record intents, start the rest."""
        self.raise_failure()
        if self.listed is not None:
            self.listed.add_many([(row.ref,) for row in batch if row.ref])
        if not self.create_only and self.known_refs is None:
            batch = await self.skip_unchanged(batch)
        batch = [row.built() for row in batch]
        candidates: list[tuple[SourceRow, str]] = []
        for row in batch:
            self.summary.ignore(row)
            rejected = _rejected_ref(row)
            if rejected is not None:
                self.report(rejected)
                continue
            ref = row.customer.unique_ref_no  # type: ignore[union-attr]
            assert ref is not None
            if self.create_only and self.known_refs is not None and ref in self.known_refs:
                self.report(SyncOutcome(row.line, ref, Outcome.FOUND, detail="in EnKash"))
                continue
            candidates.append((row, ref))
        if not candidates:
            return
        followers: list[tuple[SourceRow, str, int]] = []
        if not self.create_only:
            candidates, followers = self.drop_repeats(candidates)
        # Taken before the await below: a ref in flight now may finish (and leave
        # in_flight) while the checkpoint is asked, and its repeat must still follow it.
        earlier = {ref: self.in_flight[ref] for _, ref in candidates if ref in self.in_flight}
        fresh = list(dict.fromkeys(ref for _, ref in candidates if ref not in earlier))
        if self.create_only:
            await self.dispatch_created(candidates, earlier, fresh)
        elif candidates:
            await self.dispatch_upsert(candidates, earlier, fresh)
        for row, ref, first_line in followers:
            first = self.in_flight.get(ref)
            if first is not None:
                self.spawn(self.follow(row, ref, *first))
            else:
                self.report(self.repeated(row, ref, first_line))

    async def skip_unchanged(self, batch: list[SourceRow]) -> list[SourceRow]:
        """The fast path: a row not yet built whose fingerprint is the one the checkpoint
        recorded is ``unchanged`` without being built; the rest of ``batch`` is returned."""
        lazy = [row for row in batch if row.pending is not None and row.ref]
        if not lazy:
            return batch
        refs = list(dict.fromkeys(row.ref for row in lazy if row.ref))
        written = await self.checkpoint.written(refs)
        firsts = self.seen.first([ref for ref in refs if ref in written])
        rest: list[SourceRow] = []
        settled: list[tuple[str, int, str, bool]] = []
        count, on_outcome = self.summary.count, self.on_outcome
        for row in batch:
            ref, fingerprint = row.ref, row.fingerprint
            known = written.get(ref) if ref and row.pending is not None else None
            first = firsts.get(ref) if ref else None
            if (
                known is None
                or known.fingerprint != fingerprint
                or (first is not None and first[1] != fingerprint)
                or ref in self.in_flight
            ):
                rest.append(row)
                continue
            assert ref is not None and fingerprint is not None
            if first is None:
                firsts[ref] = (row.line, fingerprint)
                settled.append((ref, row.line, fingerprint, True))
            outcome = SyncOutcome(
                row.line, ref, Outcome.UNCHANGED, known.customer_id, detail="checkpoint"
            )
            count(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        self.seen.add_settled(settled)
        return rest

    def drop_repeats(
        self, candidates: list[tuple[SourceRow, str]]
    ) -> tuple[list[tuple[SourceRow, str]], list[tuple[SourceRow, str, int]]]:
        """The rows of the first occurrence of each ref, and the repeats with the same
        data (which follow the first row: it is sent once); a repeat with other data is
        rejected, both lines named."""
        firsts = self.seen.first(list(dict.fromkeys(ref for _, ref in candidates)))
        kept: list[tuple[SourceRow, str]] = []
        followers: list[tuple[SourceRow, str, int]] = []
        new: list[tuple[str, int, str]] = []
        for row, ref in candidates:
            fingerprint = row_fingerprint(row)
            first = firsts.get(ref)
            if first is None:
                firsts[ref] = (row.line, fingerprint)
                new.append((ref, row.line, fingerprint))
                kept.append((row, ref))
            elif first[1] != fingerprint:
                self.report(_repeat(row, ref, first[0]))
            else:
                followers.append((row, ref, first[0]))
        self.seen.add(new)
        return kept, followers

    def repeated(self, row: SourceRow, ref: str, first_line: int) -> SyncOutcome:
        """A repeat, with the same data, of a row that has ended."""
        detail = f"same uniqueRefNo as line {first_line}"
        if self.seen.ok(ref):
            return SyncOutcome(row.line, ref, Outcome.UNCHANGED, detail=detail)
        error = EnkashError(f"line {first_line}, with the same data, did not reach EnKash")
        return SyncOutcome(row.line, ref, Outcome.FAILED, error=error, detail=detail)

    async def dispatch_created(
        self,
        candidates: list[tuple[SourceRow, str]],
        earlier: dict[str, tuple[int, asyncio.Future[SyncOutcome]]],
        fresh: list[str],
    ) -> None:
        """``create_only``: a done ref is found; the rest are claimed and created."""
        claims = await self.checkpoint.claim(fresh) if fresh else {}
        work: list[_Work] = []
        for row, ref in candidates:
            first = earlier.get(ref) or self.in_flight.get(ref)
            if first is not None:
                self.spawn(self.follow(row, ref, *first))
                continue
            claim = claims[ref]
            if claim is Claim.DONE:
                self.report(SyncOutcome(row.line, ref, Outcome.FOUND, detail="checkpoint"))
                continue
            item = self.track(row, ref, lookup_first=claim is not Claim.NEW)
            if claim is Claim.HELD:
                await self.hold(item)
            else:
                work.append(item)
        for item in work:
            await self.start(item)

    async def dispatch_upsert(
        self,
        candidates: list[tuple[SourceRow, str]],
        earlier: dict[str, tuple[int, asyncio.Future[SyncOutcome]]],
        fresh: list[str],
    ) -> None:
        """A ref written before with the same fingerprint is unchanged; one written with
        another is compared with EnKash's record (from the scan, or read by id); one
        EnKash has (the scan says) is compared; the rest are claimed, as creates."""
        written = await self.checkpoint.written(fresh) if fresh else {}
        unclaimed: list[tuple[SourceRow, str]] = []
        compare: list[_Work] = []
        for row, ref in candidates:
            first = earlier.get(ref) or self.in_flight.get(ref)
            if first is not None:
                self.spawn(self.follow(row, ref, *first))
                continue
            known = written.get(ref)
            current = self.known_refs.record(ref) if self.known_refs is not None else None
            if known is not None and current is None and known.fingerprint == row_fingerprint(row):
                self.report(
                    SyncOutcome(
                        row.line, ref, Outcome.UNCHANGED, known.customer_id, detail="checkpoint"
                    )
                )
                continue
            if current is not None:
                reactivate = known is not None and known.fingerprint == DEACTIVATED
                self.compare_now(row, ref, current, reactivate=reactivate)
                continue
            if known is not None:
                item = self.track(row, ref, lookup_first=False)
                item.customer_id = known.customer_id
                item.reactivate = known.fingerprint == DEACTIVATED
                compare.append(item)
                continue
            unclaimed.append((row, ref))
        claims = await self.checkpoint.claim([ref for _, ref in unclaimed]) if unclaimed else {}
        work: list[_Work] = []
        done_elsewhere: list[_Work] = []
        for row, ref in unclaimed:
            claim = claims[ref]
            item = self.track(row, ref, lookup_first=claim is not Claim.NEW)
            if claim is Claim.DONE:  # done since written() was asked: compare it
                done_elsewhere.append(item)
            elif claim is Claim.HELD:
                await self.hold(item)
            else:
                work.append(item)
        if done_elsewhere:
            compare += await self.with_ids(done_elsewhere)
        await self.read_and_compare(compare)
        for item in work:
            await self.start(item)

    def track(self, row: SourceRow, ref: str, *, lookup_first: bool) -> _Work:
        """A row to send, registered in flight (its repeats follow it)."""
        done: asyncio.Future[SyncOutcome] = asyncio.get_running_loop().create_future()
        self.in_flight[ref] = (row.line, done)
        return _Work(row, ref, lookup_first, done, "" if self.create_only else row_fingerprint(row))

    async def with_ids(self, items: list[_Work]) -> list[_Work]:
        """``items`` given the customer id the checkpoint recorded for each."""
        written = await self.checkpoint.written([item.ref for item in items])
        for item in items:
            known = written.get(item.ref)
            if known is not None:
                item.customer_id = known.customer_id
                item.reactivate = known.fingerprint == DEACTIVATED
        return items

    def compare_now(self, row: SourceRow, ref: str, current: Customer, *, reactivate: bool) -> None:
        """Compare ``row`` with EnKash's record from the scan: unchanged at once, else sent."""
        try:
            change = change_for(current, row, reactivate=reactivate)
        except ValidationError as exc:
            self.report(SyncOutcome(row.line, ref, Outcome.REJECTED, reasons=_reasons(exc)))
            return
        item = self.track(row, ref, lookup_first=False)
        item.customer_id = current.customer_id
        if not change:
            outcome = SyncOutcome(
                row.line, ref, Outcome.UNCHANGED, current.customer_id, detail="in EnKash"
            )
            self.spawn(self.settle(item, _ready(outcome)))
            return
        self.spawn(self.start_change(item, current, change))

    async def start_change(self, item: _Work, current: Customer, change: Change) -> None:
        async with self.slots:
            await self.settle(item, self.send_change(item, current, change, "in EnKash"))

    async def read_and_compare(self, items: list[_Work]) -> None:
        """Read the records of ``items`` by customer id, many per search, then compare."""
        for start in range(0, len(items), _READ_BATCH):
            chunk = items[start : start + _READ_BATCH]
            await self.reads.acquire()
            self.spawn(self.read_chunk(chunk))

    async def read_chunk(self, items: list[_Work]) -> None:
        try:
            ids = tuple(dict.fromkeys(item.customer_id for item in items if item.customer_id))
            by_id: dict[str, Customer] = {}
            failure: EnkashError | None = None
            if ids:
                search = CustomerSearch(customer_ids=ids)
                try:
                    pages = self.client.customers.search(search, page_size=len(ids), prefetch=0)
                    async for found in pages:
                        if found.customer_id in ids:
                            by_id.setdefault(found.customer_id, found)
                except EnkashError as exc:
                    failure = exc
        finally:
            self.reads.release()
        for item in items:
            current = by_id.get(item.customer_id or "")
            if failure is not None:
                error = failure
                outcome = SyncOutcome(
                    item.row.line, item.ref, Outcome.FAILED, error=error, detail="read"
                )
                self.spawn(self.settle(item, _ready(outcome)))
            else:
                await self.slots.acquire()
                self.spawn(self.settle(item, self.compare_read(item, current)), slot=True)

    async def compare_read(self, item: _Work, current: Customer | None) -> SyncOutcome:
        """The outcome of a row whose record was read by id (``None``: not found by id)."""
        row, ref = item.row, item.ref
        if current is None:  # not under the recorded id: deleted, or recreated by someone
            try:
                current = await find_by_ref(self.client, ref)
            except EnkashError as exc:
                return SyncOutcome(row.line, ref, Outcome.FAILED, error=exc, detail="lookup")
            if current is None:
                error = NotFoundError(
                    f"EnKash no longer has the customer {item.customer_id or ref!r} this "
                    f"checkpoint recorded for {ref!r} (deleted in EnKash?); nothing was sent. "
                    "To create it again, sync with another checkpoint or --run name",
                    status=404,
                )
                return SyncOutcome(row.line, ref, Outcome.FAILED, error=error, detail="read")
        try:
            change = change_for(current, row, reactivate=item.reactivate)
        except ValidationError as exc:
            return SyncOutcome(row.line, ref, Outcome.REJECTED, reasons=_reasons(exc))
        return await self.send_change(item, current, change, item.detail)

    async def send_change(
        self, item: _Work, current: Customer, change: Change, detail: str
    ) -> SyncOutcome:
        row, ref = item.row, item.ref
        customer_id = current.customer_id
        if not change:
            return SyncOutcome(row.line, ref, Outcome.UNCHANGED, customer_id, detail=detail)
        if customer_id is None:
            error = EnkashError(f"EnKash's customer {ref!r} has no customerId: cannot update it")
            return SyncOutcome(row.line, ref, Outcome.FAILED, error=error)
        try:
            await apply_change(self.client, customer_id, change)
        except EnkashError as exc:
            return SyncOutcome(row.line, ref, Outcome.FAILED, customer_id, error=exc)
        return SyncOutcome(
            row.line, ref, Outcome.UPDATED, customer_id, detail=detail, changed=change.changed
        )

    async def start(self, item: _Work) -> None:
        await self.slots.acquire()  # bounds requests and rows held at once
        if self.failure is not None:
            self.slots.release()
            self.raise_failure()
        self.spawn(self.settle(item, self.outcome_of(item)), slot=True)

    async def hold(self, item: _Work) -> None:
        """Wait, unsent, for the owner holding ``item``'s intent to finish it or die."""
        await self.held_room.acquire()
        self.held[item.ref] = item
        if self.watcher is None:
            self.watcher = asyncio.ensure_future(self.watch_held())
            self.spawn(self.watcher)

    async def watch_held(self) -> None:
        """Ask after the held intents until none is left: done by their owner is
        ``found`` (compared, with upserts); given up (the owner closed or died) is looked
        up, then created."""
        try:
            while self.held:
                await asyncio.sleep(_HELD_POLL)
                refs = list(self.held)
                for start in range(0, len(refs), _BATCH):
                    chunk = refs[start : start + _BATCH]
                    claims = await self.checkpoint.claim(chunk)
                    done_elsewhere: list[_Work] = []
                    for ref in chunk:
                        claim = claims[ref]
                        if claim is Claim.HELD:
                            continue
                        item = self.held.pop(ref)
                        self.held_room.release()
                        if claim is Claim.DONE and not self.create_only:
                            done_elsewhere.append(item)
                        elif claim is Claim.DONE:
                            self.in_flight.pop(ref, None)
                            outcome = SyncOutcome(
                                item.row.line, ref, Outcome.FOUND, detail="another run"
                            )
                            self.report(outcome)
                            item.done.set_result(outcome)
                        else:
                            item.lookup_first = True  # its owner may have sent it
                            await self.start(item)
                    for item in done_elsewhere:
                        item.detail = "another run"
                    if done_elsewhere:
                        await self.read_and_compare(await self.with_ids(done_elsewhere))
        finally:
            self.watcher = None

    def spawn(self, coroutine: Any, *, slot: bool = False) -> None:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)

        def finished(task: asyncio.Task[None]) -> None:
            self.tasks.discard(task)
            if slot:
                self.slots.release()
            if not task.cancelled() and task.exception() is not None and self.failure is None:
                self.failure = task.exception()

        task.add_done_callback(finished)

    async def follow(
        self, row: SourceRow, ref: str, first_line: int, first: asyncio.Future[SyncOutcome]
    ) -> None:
        """A row repeating a ref in flight shares the first row's fate; never a second send."""
        try:
            settled = await asyncio.shield(first)
        except asyncio.CancelledError:
            raise
        detail = f"same uniqueRefNo as line {first_line}"
        if settled.outcome in _SETTLED:
            kind = Outcome.FOUND if self.create_only else Outcome.UNCHANGED
            self.report(SyncOutcome(row.line, ref, kind, settled.customer_id, detail=detail))
        elif settled.outcome is Outcome.REJECTED:
            reasons = (f"line {first_line}, with the same data, was rejected", *settled.reasons)
            self.report(SyncOutcome(row.line, ref, Outcome.REJECTED, reasons=reasons))
        else:
            error = settled.error or EnkashError(f"line {first_line} was {settled.outcome.value}")
            self.report(SyncOutcome(row.line, ref, Outcome.FAILED, error=error, detail=detail))

    async def settle(self, item: _Work, work: Awaitable[SyncOutcome]) -> None:
        try:
            outcome = await work
            if outcome.outcome in _SETTLED:
                await self.checkpoint.mark_done(
                    item.ref, outcome.customer_id, item.fingerprint or None
                )
            elif outcome.customer_id is not None and outcome.outcome is Outcome.FAILED:
                # EnKash has it, as something other than the row: compared next time.
                await self.checkpoint.mark_done(item.ref, outcome.customer_id, None)
            self.report(outcome)
            item.done.set_result(outcome)
        except BaseException:
            item.done.cancel()
            raise
        finally:
            del self.in_flight[item.ref]

    async def outcome_of(self, item: _Work) -> SyncOutcome:
        row, ref = item.row, item.ref
        if item.lookup_first:
            if self.settling is None:
                policy = self.client.retry
                self.settling = asyncio.ensure_future(policy.sleep(policy.settle_time))
            await asyncio.shield(self.settling)
            try:
                found = await find_by_ref(self.client, ref)
            except EnkashError as exc:
                return SyncOutcome(row.line, ref, Outcome.FAILED, error=exc, detail="lookup")
            if found is not None:
                if self.create_only:
                    return SyncOutcome(
                        row.line, ref, Outcome.FOUND, found.customer_id, detail="lookup"
                    )
                try:
                    change = change_for(found, row)
                except ValidationError as exc:
                    return SyncOutcome(row.line, ref, Outcome.REJECTED, reasons=_reasons(exc))
                return await self.send_change(item, found, change, "lookup")
        assert row.customer is not None
        result = await _create(self.client, row.customer)
        if result.customer is None:
            error = result.error or EnkashError("create failed")
            return SyncOutcome(row.line, ref, Outcome.FAILED, error=error)
        customer_id = result.customer.customer_id
        if result.reconciled and self.create_only:
            return SyncOutcome(row.line, ref, Outcome.FOUND, customer_id, detail="reconciled")
        detail = "reconciled" if result.reconciled else ""
        if not self.create_only:
            failed = await self.finish_create(row, result.customer)
            if failed is not None:
                return failed
        return SyncOutcome(row.line, ref, Outcome.CREATED, customer_id, detail=detail)

    async def finish_create(self, row: SourceRow, created: Customer) -> SyncOutcome | None:
        """Send what a create cannot set (``assignedAgent``, ``branchCodes``, ``active``
        false); the failed outcome when that fails (the customer exists)."""
        extras: dict[str, Any] = {}
        if row.assigned_agent is not UNSET and row.assigned_agent:
            extras["assigned_agent"] = row.assigned_agent
        if row.branch_codes is not UNSET and row.branch_codes:
            extras["branch_codes"] = row.branch_codes
        change = Change(CustomerUpdate(**extras), False if row.active is False else None)
        if not change or created.customer_id is None:
            return None
        try:
            await apply_change(self.client, created.customer_id, change)
        except EnkashError as exc:
            error = EnkashError(
                f"created as {created.customer_id}, but setting {', '.join(change.changed)} "
                f"failed ({exc}); a rerun sends it again"
            )
            error.__cause__ = exc
            return SyncOutcome(row.line, row.ref, Outcome.FAILED, created.customer_id, error=error)
        return None


# The outcomes after which EnKash holds the row as it is.
_SETTLED = frozenset({Outcome.CREATED, Outcome.FOUND, Outcome.UPDATED, Outcome.UNCHANGED})
# The outcomes a row's sync ends in.
_ENDS = _SETTLED | {Outcome.FAILED, Outcome.REJECTED}


async def _ready(outcome: SyncOutcome) -> SyncOutcome:
    return outcome


async def _create(client: EnkashClient, customer: CustomerCreate) -> CreateResult:
    """One create through ``create_many``, which reports (never raises) its failure and
    tells a reconciled create from a fresh one."""
    results = client.customers.create_many((customer,), concurrency=1)
    async with contextlib.aclosing(results):
        async for result in results:
            return result
    raise AmbiguousCreateError("create_many gave no result")  # pragma: no cover


class DeactivationRefusedError(EnkashError):
    """``deactivate_missing`` would deactivate more than ``max_share`` of the customers the
    checkpoint knows (``missing`` of ``known``), so it deactivated none: a file cut short
    must not deactivate a company's whole book."""

    def __init__(self, message: str, *, missing: int, known: int, max_share: float) -> None:
        super().__init__(message)
        self.missing = missing
        self.known = known
        self.max_share = max_share

    @property
    def share_needed(self) -> float:
        """The smallest ``max_share`` (to a thousandth, at most 1) that lets these
        deactivations through."""
        return min(1.0, (int(self.missing / self.known * 1000) + 1) / 1000)

    def __reduce__(self) -> Any:
        return (_refused, (str(self), self.missing, self.known, self.max_share))


def _refused(message: str, missing: int, known: int, max_share: float) -> DeactivationRefusedError:
    return DeactivationRefusedError(message, missing=missing, known=known, max_share=max_share)


# Deactivations sent per gather (each one request; the client's limits apply too).
_DEACTIVATE_BATCH = 64


async def deactivate_missing(
    client: EnkashClient,
    checkpoint: CheckpointStore,
    listed: Container[str],
    *,
    max_share: float = 0.10,
    dry_run: bool = False,
    concurrency: int = 8,
    on_outcome: OnOutcome | None = None,
) -> SyncSummary:
    """Deactivate every customer the syncs of ``checkpoint`` created or saw that ``listed``
    (every ref of the input, invalid rows included) no longer has; call it once, after
    every row (every chunk) is done. Each is reported ``deactivated`` (``would_deactivate``
    with ``dry_run``, nothing sent) or ``failed``, with line 0; a customer EnKash no
    longer has counts as deactivated. One deactivated earlier is not sent again, nor
    counted; a later sync that lists it again makes it active.

    Raises ``DeactivationRefusedError`` (nothing sent) when the missing customers are more
    than ``max_share`` (0 to 1) of those the checkpoint knows, ``ValidationError`` for a bad
    ``max_share`` or ``concurrency``, and what ``checkpoint`` raises.
    """
    if isinstance(max_share, bool) or not isinstance(max_share, (int, float)):
        raise ValidationError([FieldError("max_share", "must be a number from 0 to 1")])
    if not 0 <= max_share <= 1:
        raise ValidationError([FieldError("max_share", "must be a number from 0 to 1")])
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValidationError([FieldError("concurrency", "must be an integer >= 1")])
    started = time.monotonic()
    summary = SyncSummary()
    known = missing = 0
    async for ref, written in checkpoint.iter_written():
        if written.fingerprint == DEACTIVATED:
            continue
        known += 1
        missing += ref not in listed
    if missing > max_share * known:
        raise DeactivationRefusedError(
            f"refusing to deactivate {missing:,} of the {known:,} customers this checkpoint "
            f"knows ({missing / known:.1%}), more than the {max_share:.0%} allowed: is the "
            "file complete? Raise the share to deactivate them",
            missing=missing,
            known=known,
            max_share=max_share,
        )

    def report(outcome: SyncOutcome) -> None:
        summary.count(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    slots = asyncio.Semaphore(concurrency)

    async def one(ref: str, customer_id: str | None) -> None:
        if dry_run:
            report(SyncOutcome(0, ref, Outcome.WOULD_DEACTIVATE, customer_id))
            return
        async with slots:
            outcome = await _deactivate(client, ref, customer_id)
        if outcome.outcome is Outcome.DEACTIVATED:
            await checkpoint.mark_done(ref, outcome.customer_id, DEACTIVATED)
        report(outcome)

    batch: list[tuple[str, str | None]] = []
    try:
        if missing:
            async for ref, written in checkpoint.iter_written():
                if written.fingerprint == DEACTIVATED or ref in listed:
                    continue
                batch.append((ref, written.customer_id))
                if len(batch) >= _DEACTIVATE_BATCH:
                    await asyncio.gather(*(one(*item) for item in batch))
                    batch = []
            await asyncio.gather(*(one(*item) for item in batch))
    finally:
        summary.elapsed = time.monotonic() - started
    return summary


async def _deactivate(client: EnkashClient, ref: str, customer_id: str | None) -> SyncOutcome:
    """Deactivate one customer the input no longer lists (found by ref when its id is
    not recorded); EnKash not having it at all is as good."""
    try:
        if customer_id is None:
            found = await find_by_ref(client, ref)
            if found is None or found.customer_id is None:
                return SyncOutcome(0, ref, Outcome.DEACTIVATED, detail="not in EnKash")
            customer_id = found.customer_id
        await client.customers.deactivate(customer_id)
    except NotFoundError:
        return SyncOutcome(0, ref, Outcome.DEACTIVATED, customer_id, detail="not in EnKash")
    except EnkashError as exc:
        return SyncOutcome(0, ref, Outcome.FAILED, customer_id, error=exc, detail="deactivate")
    return SyncOutcome(0, ref, Outcome.DEACTIVATED, customer_id)
