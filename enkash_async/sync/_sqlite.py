"""The checkpoint of a sync on one machine: one SQLite file (stdlib ``sqlite3``, WAL).

Rows are keyed by target, run id and ``unique_ref_no``, so one file can hold the
checkpoints of several EnKash targets and runs without mixing them. Every call runs in
a worker thread so a disk that stalls never stalls the event loop. Intents are
committed with a full sync before ``mark_intended`` returns (a create is sent only
after its intent is on disk); completions are buffered and committed in batches,
because a completion lost to a crash costs one lookup on the rerun, never a duplicate.

Several processes may share one file: each store is an intent owner (``owners`` table,
a lease in wall-clock seconds renewed in the background), and :meth:`claim` decides in
one ``BEGIN IMMEDIATE`` transaction, so two processes never both hold one ref.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from enkash_async.sync._checkpoint import (
    CheckpointError,
    Claim,
    RefState,
    SyncTarget,
    Written,
    lease_seconds,
    owner_id,
    unknown_state,
)

__all__ = ["SqliteCheckpoint"]

T = TypeVar("T")
logger = logging.getLogger("enkash_async.sync")

# Completions buffered before a commit; a crash loses at most these (each costs a lookup).
_DONE_BATCH = 256
# SQLite's own limit on ``?`` parameters per statement is 32766 in current builds; stay far below.
_QUERY_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    target TEXT NOT NULL,
    run TEXT NOT NULL,
    ref TEXT NOT NULL,
    state TEXT NOT NULL,
    customer_id TEXT,
    PRIMARY KEY (target, run, ref)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (
    target TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL,
    PRIMARY KEY (target, owner)
) WITHOUT ROWID;
"""
# Columns added after the first release, each ALTERed in when an older file lacks it.
_ADDED_COLUMNS = {"owner": "TEXT", "fingerprint": "TEXT"}
# Done refs read at once by iter_written.
_ITER_CHUNK = 1000


class SqliteCheckpoint:
    """A :class:`~enkash_async.sync.CheckpointStore` in one SQLite file.

    ``path`` is the file (created when missing; ``":memory:"`` keeps nothing after
    :meth:`aclose`); ``target`` and ``run`` name whose checkpoint it is. ``lease``: the
    seconds this run's intents outlive it (a rerun after a crash waits that long for
    them); default ``$ENKASH_SYNC_LEASE_SECONDS``, else 30. Raises ``CheckpointError``
    when the file cannot be opened, read or written.
    """

    def __init__(
        self,
        path: str | Path,
        target: SyncTarget,
        run: str = "default",
        *,
        lease: float | None = None,
    ) -> None:
        self.path = str(path)
        self.target = target
        self.run = run
        #: This store's name as an intent owner, and the seconds its intents outlive it.
        self.owner = owner_id(run)
        self.lease = lease_seconds() if lease is None else lease
        self._pending: dict[str, Written] = {}
        self._lock = asyncio.Lock()
        self._renewer: asyncio.Task[None] | None = None
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
            with self._db:  # one process adds a missing column; the others then see it
                self._db.execute("BEGIN IMMEDIATE")
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(refs)")}
                for name, kind in _ADDED_COLUMNS.items():
                    if name not in columns:
                        self._db.execute(f"ALTER TABLE refs ADD COLUMN {name} {kind}")
        except sqlite3.Error as exc:
            raise CheckpointError(
                f"cannot open the checkpoint {self.path}: {exc}", store=self.path
            ) from exc

    def __repr__(self) -> str:
        return f"SqliteCheckpoint({self.path!r}, {self.target.key!r}, run={self.run!r})"

    async def states(self, refs: Sequence[str]) -> Mapping[str, RefState]:
        """The state of each of ``refs`` this checkpoint knows (buffered completions too)."""
        found = await self._call(self._states, list(refs))
        for ref in refs:
            if ref in self._pending:
                found[ref] = RefState.DONE
        return found

    async def claim(self, refs: Sequence[str]) -> Mapping[str, Claim]:
        """Take the intent of each of ``refs`` no live owner holds, committed to disk
        before it returns; what became of each ref."""
        self._start_renewing()
        claims = await self._call(self._claim, list(dict.fromkeys(refs)), self._take_pending())
        for ref in refs:  # a completion this store buffered is newer than the file
            if ref in self._pending:
                claims[ref] = Claim.DONE
        return claims

    async def mark_intended(self, refs: Sequence[str]) -> None:
        """Record ``refs`` as intended by this store (a done ref stays done), committed."""
        self._start_renewing()
        await self._call(self._intend, list(refs), self._take_pending())

    async def mark_done(
        self, ref: str, customer_id: str | None, fingerprint: str | None = None
    ) -> None:
        """Record ``ref`` as done (as the row of ``fingerprint``); committed with the next
        batch, intent or close."""
        self._pending[ref] = Written(customer_id, fingerprint)
        if len(self._pending) >= _DONE_BATCH:
            await self.flush()

    async def written(self, refs: Sequence[str]) -> Mapping[str, Written]:
        """The id and fingerprint recorded for each done ref of ``refs`` (a read only)."""
        found = await self._call(self._written, list(refs))
        for ref in refs:
            pending = self._pending.get(ref)
            if pending is not None:
                found[ref] = pending
        return found

    async def iter_written(self) -> AsyncIterator[tuple[str, Written]]:
        """Every done ref of this target and run, read from the file in pieces."""
        await self.flush()
        after = ""
        while True:
            chunk = await self._call(self._written_after, after)
            for ref, written in chunk:
                yield ref, written
            if len(chunk) < _ITER_CHUNK:
                return
            after = chunk[-1][0]

    async def flush(self) -> None:
        """Commit the buffered completions now."""
        if self._pending:
            await self._call(self._intend, [], self._take_pending())

    async def customer_ids(self, refs: Sequence[str]) -> Mapping[str, str | None]:
        """The customer id recorded for each done ref of ``refs``."""
        await self.flush()
        return await self._call(self._ids, list(refs))

    async def aclose(self) -> None:
        """Commit what is buffered, give up this store's intents and close the file."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        try:
            await self.flush()
            await self._call(self._release)
        finally:
            self._db.close()

    def _start_renewing(self) -> None:
        if self._renewer is None:
            self._renewer = asyncio.ensure_future(self._renew_forever())

    async def _renew_forever(self) -> None:
        """Renew this owner's lease every third of it, while the store is open."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._call(self._renew)
            except CheckpointError as exc:  # the next try may work; two are left
                logger.warning("%s; renewing the intents' lease later", exc)

    # The blocking half, run in a worker thread one call at a time.

    def _take_pending(self) -> dict[str, Written]:
        pending, self._pending = self._pending, {}
        return pending

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        async with self._lock:
            try:
                return await asyncio.to_thread(function, *args)
            except sqlite3.Error as exc:
                raise CheckpointError(
                    f"checkpoint {self.path} failed: {exc}", store=self.path
                ) from exc

    def _key(self) -> tuple[str, str]:
        return self.target.key, self.run

    def _state(self, ref: str, state: str) -> RefState:
        try:
            return RefState(state)
        except ValueError:
            raise unknown_state(ref, state, store=self.path) from None

    def _rows(self, refs: list[str]) -> dict[str, tuple[str, str | None]]:
        """(state, owner) of each of ``refs`` the file has."""
        found: dict[str, tuple[str, str | None]] = {}
        for start in range(0, len(refs), _QUERY_CHUNK):
            chunk = refs[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT ref, state, owner FROM refs WHERE target=? AND run=? AND ref IN ({marks})",
                (*self._key(), *chunk),
            )
            found.update((ref, (state, owner)) for ref, state, owner in rows)
        return found

    def _states(self, refs: list[str]) -> dict[str, RefState]:
        return {ref: self._state(ref, state) for ref, (state, _) in self._rows(refs).items()}

    def _lease_now(self) -> float:
        """Renew this owner's lease (inside a transaction); the time now."""
        now = time.time()
        self._db.execute(
            "INSERT INTO owners (target, owner, lease_until) VALUES (?, ?, ?) "
            "ON CONFLICT DO UPDATE SET lease_until=excluded.lease_until",
            (self.target.key, self.owner, now + self.lease),
        )
        return now

    def _claim(self, refs: list[str], done: dict[str, Written]) -> dict[str, Claim]:
        target, run = self._key()
        claims: dict[str, Claim] = {}
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # one writer decides, the others wait
            self._write_done(done)
            now = self._lease_now()
            live = {
                owner
                for (owner,) in self._db.execute(
                    "SELECT owner FROM owners WHERE target=? AND lease_until > ?", (target, now)
                )
            }
            rows = self._rows(refs)
            take: list[str] = []
            for ref in refs:
                row = rows.get(ref)
                if row is None:
                    claims[ref] = Claim.NEW
                    take.append(ref)
                    continue
                state, owner = self._state(ref, row[0]), row[1]
                if state is RefState.DONE:
                    claims[ref] = Claim.DONE
                elif owner != self.owner and owner in live:
                    claims[ref] = Claim.HELD
                else:  # ours from an earlier pass, or a dead owner's: it may have been sent
                    claims[ref] = Claim.RECLAIMED
                    take.append(ref)
            self._db.executemany(
                "INSERT INTO refs (target, run, ref, state, owner) VALUES (?, ?, ?, 'intended', ?) "
                "ON CONFLICT DO UPDATE SET owner=excluded.owner",
                [(target, run, ref, self.owner) for ref in take],
            )
        return claims

    def _renew(self) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._lease_now()
            # Owners dead for a day: nothing of theirs is live; keep the table small.
            self._db.execute(
                "DELETE FROM owners WHERE target=? AND lease_until < ?",
                (self.target.key, time.time() - 86400),
            )

    def _release(self) -> None:
        with self._db:
            self._db.execute(
                "DELETE FROM owners WHERE target=? AND owner=?", (self.target.key, self.owner)
            )

    def _write_done(self, done: dict[str, Written]) -> None:
        target, run = self._key()
        self._db.executemany(
            "INSERT INTO refs (target, run, ref, state, customer_id, fingerprint) "
            "VALUES (?, ?, ?, 'done', ?, ?) ON CONFLICT DO UPDATE SET state='done', "
            "customer_id=excluded.customer_id, fingerprint=excluded.fingerprint",
            [(target, run, ref, w.customer_id, w.fingerprint) for ref, w in done.items()],
        )

    def _written(self, refs: list[str]) -> dict[str, Written]:
        found: dict[str, Written] = {}
        for start in range(0, len(refs), _QUERY_CHUNK):
            chunk = refs[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT ref, customer_id, fingerprint FROM refs WHERE target=? AND run=? "
                f"AND state='done' AND ref IN ({marks})",
                (*self._key(), *chunk),
            )
            found.update((ref, Written(cid, fp)) for ref, cid, fp in rows)
        return found

    def _written_after(self, after: str) -> list[tuple[str, Written]]:
        rows = self._db.execute(
            "SELECT ref, customer_id, fingerprint FROM refs WHERE target=? AND run=? "
            "AND state='done' AND ref > ? ORDER BY ref LIMIT ?",
            (*self._key(), after, _ITER_CHUNK),
        )
        return [(ref, Written(cid, fp)) for ref, cid, fp in rows]

    def _ids(self, refs: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for start in range(0, len(refs), _QUERY_CHUNK):
            chunk = refs[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT ref, customer_id FROM refs WHERE target=? AND run=? AND state='done' "
                f"AND ref IN ({marks})",
                (*self._key(), *chunk),
            )
            found.update(rows)
        return found

    def _intend(self, refs: list[str], done: dict[str, Written]) -> None:
        target, run = self._key()
        with self._db:  # one transaction: BEGIN ... COMMIT
            self._db.execute("BEGIN IMMEDIATE")
            self._lease_now()
            self._db.executemany(
                "INSERT INTO refs (target, run, ref, state, owner) VALUES (?, ?, ?, 'intended', ?) "
                "ON CONFLICT DO NOTHING",
                [(target, run, ref, self.owner) for ref in refs],
            )
            self._write_done(done)
