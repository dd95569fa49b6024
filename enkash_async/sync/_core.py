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
import sqlite3
import time
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

import attrs

from enkash_async import (
    AmbiguousCreateError,
    CreateResult,
    Customer,
    CustomerCreate,
    EnkashClient,
    EnkashError,
    FieldError,
    ValidationError,
)
from enkash_async.sync._checkpoint import CheckpointStore, Claim
from enkash_async.sync._sources import SourceRow, iter_rows

__all__ = [
    "KnownRefs",
    "Outcome",
    "SyncOutcome",
    "SyncSummary",
    "find_by_ref",
    "plan_rows",
    "sync_rows",
]

Rows = Iterable[SourceRow | CustomerCreate] | AsyncIterable[SourceRow | CustomerCreate]
# Rows read and checked against the checkpoint at once: one claim commit.
_BATCH = 256
# Rows whose intent another live owner holds, waiting at once (beyond them, reading waits).
_HELD_MAX = 4096
# Seconds between asks for the intents other owners hold.
_HELD_POLL = 0.5


class Outcome(str, enum.Enum):
    """How a row ended."""

    CREATED = "created"
    #: EnKash already had it: an earlier run, another worker, or a reconciled create.
    FOUND = "found"
    #: Invalid, never sent; ``reasons`` says every why.
    REJECTED = "rejected"
    #: Sent or looked up, and it failed; ``error`` says how.
    FAILED = "failed"
    #: Dry run only: a real run would create it.
    WOULD_CREATE = "would_create"


@attrs.frozen
class SyncOutcome:
    """The outcome of one row: its ``line``, ``ref``, what became of it, the customer id
    when EnKash has it, every reason a row was rejected, or the error it failed with."""

    line: int
    ref: str | None
    outcome: Outcome
    customer_id: str | None = None
    reasons: tuple[str, ...] = ()
    error: EnkashError | None = None
    #: How the row came to be found: "checkpoint", "lookup", "reconciled", "in EnKash",
    #: or "same ref as line N".
    detail: str = ""


@attrs.define
class SyncSummary:
    """Counts of a sync (or dry run) so far, and its elapsed seconds."""

    created: int = 0
    found: int = 0
    rejected: int = 0
    failed: int = 0
    would_create: int = 0
    #: Read-only fields (``customerId``, timestamps) the rows carried and the sync ignored.
    ignored_fields: int = 0
    elapsed: float = 0.0

    @property
    def rows(self) -> int:
        """Rows with an outcome."""
        return self.created + self.found + self.rejected + self.failed + self.would_create

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0

    def count(self, outcome: SyncOutcome) -> None:
        """Add ``outcome`` to the counts."""
        name = outcome.outcome.value
        setattr(self, name, getattr(self, name) + 1)


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
    million refs cost no memory. :meth:`load` fills it from EnKash in one search pass."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)  # "" is a temporary file
        self._db.execute("CREATE TABLE refs (ref TEXT PRIMARY KEY) WITHOUT ROWID")
        self.loaded = 0

    async def load(
        self,
        client: EnkashClient,
        *,
        page_size: int = 1000,
        on_page: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Add the ref of every customer EnKash has (one streamed search); returns how
        many customers were read. ``on_page(customers in the page, EnKash's total)`` is
        called after each page. Raises like ``customers.search``."""
        async for page in client.customers.search(page_size=page_size).pages():
            refs = [(c.unique_ref_no,) for c in page.items if c.unique_ref_no]
            self.add_many(refs)
            self.loaded += len(page)
            if on_page is not None:
                on_page(len(page), page.records_count)
        return self.loaded

    def add_many(self, refs: list[tuple[str]]) -> None:
        """Add refs (each a 1-tuple)."""
        self._db.executemany("INSERT OR IGNORE INTO refs VALUES (?)", refs)

    def add(self, ref: str) -> bool:
        """Add ``ref``; False when it was there already."""
        return self._db.execute("INSERT OR IGNORE INTO refs VALUES (?)", (ref,)).rowcount == 1

    def __contains__(self, ref: object) -> bool:
        row = self._db.execute("SELECT 1 FROM refs WHERE ref = ?", (ref,)).fetchone()
        return row is not None

    def close(self) -> None:
        """Delete the temporary database."""
        self._db.close()


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
) -> SyncSummary:
    """The dry run of :func:`sync_rows`: send no create, report per row ``would_create``,
    ``found`` (EnKash has the ref, or an earlier row of the input) or ``rejected``.

    EnKash's customers are streamed once to learn which refs exist (pass ``known_refs``
    already loaded to skip that). Raises like ``customers.search``.
    """
    started = time.monotonic()
    summary = SyncSummary()
    existing = known_refs
    if existing is None:
        if client is None:
            raise ValidationError([FieldError("client", "pass a client or known_refs")])
        existing = KnownRefs()
        await existing.load(client)
    planned = KnownRefs()  # refs earlier rows of this input would create
    try:
        async for row in iter_rows(rows):
            summary.ignored_fields += row.ignored
            outcome = _rejected_ref(row)
            if outcome is None:
                ref = row.customer.unique_ref_no  # type: ignore[union-attr]
                assert ref is not None
                if ref in existing:
                    outcome = SyncOutcome(row.line, ref, Outcome.FOUND, detail="in EnKash")
                elif not planned.add(ref):
                    outcome = SyncOutcome(
                        row.line, ref, Outcome.FOUND, detail="repeats an earlier row's ref"
                    )
                else:
                    outcome = SyncOutcome(row.line, ref, Outcome.WOULD_CREATE)
            summary.count(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    finally:
        planned.close()
        if known_refs is None:
            existing.close()
        summary.elapsed = time.monotonic() - started
    return summary


async def sync_rows(
    rows: Rows,
    *,
    client: EnkashClient,
    checkpoint: CheckpointStore,
    concurrency: int = 32,
    on_outcome: OnOutcome | None = None,
    known_refs: KnownRefs | None = None,
) -> SyncSummary:
    """Make the customer of every valid row exist in EnKash exactly once; return the counts.

    ``rows`` are :class:`SourceRow`s (from :func:`read_file`) or ``CustomerCreate``s, from
    an iterable or async iterable read lazily. Each row gets exactly one outcome, passed to
    ``on_outcome`` (a plain function, called on the event loop) the moment it is known:
    ``created``, ``found``, ``rejected`` (invalid or without ``unique_ref_no``, unsent) or
    ``failed``. Up to ``concurrency`` creates or lookups run at once (within the client's
    own limits). ``known_refs`` (refs EnKash is known to have) skips those rows unsent.

    Raises what ``checkpoint`` raises (nothing is sent that could not be recorded as
    intended first), and ``ValidationError`` for a bad ``concurrency``. A row's own
    failure never raises.
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValidationError([FieldError("concurrency", "must be an integer >= 1")])
    run = _Run(client, checkpoint, concurrency, on_outcome, known_refs)
    try:
        await run.feed(rows)
    finally:
        run.summary.elapsed = time.monotonic() - run.started
    return run.summary


@attrs.define
class _Work:
    row: SourceRow
    ref: str
    lookup_first: bool
    done: asyncio.Future[SyncOutcome]


class _Run:
    def __init__(
        self,
        client: EnkashClient,
        checkpoint: CheckpointStore,
        concurrency: int,
        on_outcome: OnOutcome | None,
        known_refs: KnownRefs | None,
    ) -> None:
        self.client = client
        self.checkpoint = checkpoint
        self.on_outcome = on_outcome
        self.known_refs = known_refs
        self.summary = SyncSummary()
        self.started = time.monotonic()
        self.slots = asyncio.Semaphore(concurrency)
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
        self.summary.count(outcome)
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
        candidates: list[tuple[SourceRow, str]] = []
        for row in batch:
            self.summary.ignored_fields += row.ignored
            rejected = _rejected_ref(row)
            if rejected is not None:
                self.report(rejected)
                continue
            ref = row.customer.unique_ref_no  # type: ignore[union-attr]
            assert ref is not None
            if self.known_refs is not None and ref in self.known_refs:
                self.report(SyncOutcome(row.line, ref, Outcome.FOUND, detail="in EnKash"))
                continue
            candidates.append((row, ref))
        if not candidates:
            return
        # Taken before the await below: a ref in flight now may finish (and leave
        # in_flight) while the checkpoint is asked, and its repeat must still follow it.
        earlier = {ref: self.in_flight[ref] for _, ref in candidates if ref in self.in_flight}
        fresh = list(dict.fromkeys(ref for _, ref in candidates if ref not in earlier))
        claims = await self.checkpoint.claim(fresh) if fresh else {}
        work: list[_Work] = []
        loop = asyncio.get_running_loop()
        for row, ref in candidates:
            first = earlier.get(ref) or self.in_flight.get(ref)
            if first is not None:
                self.spawn(self.follow(row, ref, *first))
                continue
            claim = claims[ref]
            if claim is Claim.DONE:
                self.report(SyncOutcome(row.line, ref, Outcome.FOUND, detail="checkpoint"))
                continue
            done: asyncio.Future[SyncOutcome] = loop.create_future()
            self.in_flight[ref] = (row.line, done)
            item = _Work(row, ref, claim is not Claim.NEW, done)
            if claim is Claim.HELD:
                await self.hold(item)
            else:
                work.append(item)
        for item in work:
            await self.start(item)

    async def start(self, item: _Work) -> None:
        await self.slots.acquire()  # bounds requests and rows held at once
        if self.failure is not None:
            self.slots.release()
            self.raise_failure()
        self.spawn(self.settle(item), slot=True)

    async def hold(self, item: _Work) -> None:
        """Wait, unsent, for the owner holding ``item``'s intent to finish it or die."""
        await self.held_room.acquire()
        self.held[item.ref] = item
        if self.watcher is None:
            self.watcher = asyncio.ensure_future(self.watch_held())
            self.spawn(self.watcher)

    async def watch_held(self) -> None:
        """Ask after the held intents until none is left: done by their owner is
        ``found``; given up (the owner closed or died) is looked up, then created."""
        try:
            while self.held:
                await asyncio.sleep(_HELD_POLL)
                refs = list(self.held)
                for start in range(0, len(refs), _BATCH):
                    chunk = refs[start : start + _BATCH]
                    claims = await self.checkpoint.claim(chunk)
                    for ref in chunk:
                        claim = claims[ref]
                        if claim is Claim.HELD:
                            continue
                        item = self.held.pop(ref)
                        self.held_room.release()
                        if claim is Claim.DONE:
                            self.in_flight.pop(ref, None)
                            outcome = SyncOutcome(
                                item.row.line, ref, Outcome.FOUND, detail="another run"
                            )
                            self.report(outcome)
                            item.done.set_result(outcome)
                        else:
                            item.lookup_first = True  # its owner may have sent it
                            await self.start(item)
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
        """A row repeating a ref in flight shares the first row's fate; never a second create."""
        try:
            settled = await asyncio.shield(first)
        except asyncio.CancelledError:
            raise
        detail = f"same uniqueRefNo as line {first_line}"
        if settled.outcome in (Outcome.CREATED, Outcome.FOUND):
            self.report(
                SyncOutcome(row.line, ref, Outcome.FOUND, settled.customer_id, detail=detail)
            )
        else:
            error = settled.error or EnkashError(f"line {first_line} was {settled.outcome.value}")
            self.report(SyncOutcome(row.line, ref, Outcome.FAILED, error=error, detail=detail))

    async def settle(self, item: _Work) -> None:
        try:
            outcome = await self.outcome_of(item)
            if outcome.outcome in (Outcome.CREATED, Outcome.FOUND):
                await self.checkpoint.mark_done(item.ref, outcome.customer_id)
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
                return SyncOutcome(row.line, ref, Outcome.FOUND, found.customer_id, detail="lookup")
        assert row.customer is not None
        result = await _create(self.client, row.customer)
        if result.customer is None:
            error = result.error or EnkashError("create failed")
            return SyncOutcome(row.line, ref, Outcome.FAILED, error=error)
        customer_id = result.customer.customer_id
        if result.reconciled:
            return SyncOutcome(row.line, ref, Outcome.FOUND, customer_id, detail="reconciled")
        return SyncOutcome(row.line, ref, Outcome.CREATED, customer_id)


async def _create(client: EnkashClient, customer: CustomerCreate) -> CreateResult:
    """One create through ``create_many``, which reports (never raises) its failure and
    tells a reconciled create from a fresh one."""
    results = client.customers.create_many((customer,), concurrency=1)
    async with contextlib.aclosing(results):
        async for result in results:
            return result
    raise AmbiguousCreateError("create_many gave no result")  # pragma: no cover
