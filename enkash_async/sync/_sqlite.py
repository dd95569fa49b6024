"""The checkpoint of a sync on one machine: one SQLite file (stdlib ``sqlite3``, WAL).

Rows are keyed by target, run id and ``unique_ref_no``, so one file can hold the
checkpoints of several EnKash targets and runs without mixing them. Every call runs in
a worker thread so a disk that stalls never stalls the event loop. Intents are
committed with a full sync before ``mark_intended`` returns (a create is sent only
after its intent is on disk); completions are buffered and committed in batches,
because a completion lost to a crash costs one lookup on the rerun, never a duplicate.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from enkash_async.sync._checkpoint import CheckpointError, RefState, SyncTarget

__all__ = ["SqliteCheckpoint"]

T = TypeVar("T")

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
) WITHOUT ROWID
"""


class SqliteCheckpoint:
    """A :class:`~enkash_async.sync.CheckpointStore` in one SQLite file.

    ``path`` is the file (created when missing; ``":memory:"`` keeps nothing after
    :meth:`aclose`); ``target`` and ``run`` name whose checkpoint it is. Raises
    ``CheckpointError`` when the file cannot be opened, read or written.
    """

    def __init__(self, path: str | Path, target: SyncTarget, run: str = "default") -> None:
        self.path = str(path)
        self.target = target
        self.run = run
        self._pending: dict[str, str | None] = {}
        self._lock = asyncio.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute(_SCHEMA)
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

    async def mark_intended(self, refs: Sequence[str]) -> None:
        """Record ``refs`` as intended (a done ref stays done), committed to disk."""
        await self._call(self._intend, list(refs), self._take_pending())

    async def mark_done(self, ref: str, customer_id: str | None) -> None:
        """Record ``ref`` as done; committed with the next batch, intent or close."""
        self._pending[ref] = customer_id
        if len(self._pending) >= _DONE_BATCH:
            await self.flush()

    async def flush(self) -> None:
        """Commit the buffered completions now."""
        if self._pending:
            await self._call(self._intend, [], self._take_pending())

    async def customer_ids(self, refs: Sequence[str]) -> Mapping[str, str | None]:
        """The customer id recorded for each done ref of ``refs``."""
        await self.flush()
        return await self._call(self._ids, list(refs))

    async def aclose(self) -> None:
        """Commit what is buffered and close the file."""
        try:
            await self.flush()
        finally:
            self._db.close()

    # The blocking half, run in a worker thread one call at a time.

    def _take_pending(self) -> dict[str, str | None]:
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

    def _states(self, refs: list[str]) -> dict[str, RefState]:
        found: dict[str, RefState] = {}
        for start in range(0, len(refs), _QUERY_CHUNK):
            chunk = refs[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT ref, state FROM refs WHERE target=? AND run=? AND ref IN ({marks})",
                (*self._key(), *chunk),
            )
            found.update((ref, RefState(state)) for ref, state in rows)
        return found

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

    def _intend(self, refs: list[str], done: dict[str, str | None]) -> None:
        target, run = self._key()
        with self._db:  # one transaction: BEGIN ... COMMIT
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO refs (target, run, ref, state) VALUES (?, ?, ?, 'intended') "
                "ON CONFLICT DO NOTHING",
                [(target, run, ref) for ref in refs],
            )
            self._db.executemany(
                "INSERT INTO refs (target, run, ref, state, customer_id) "
                "VALUES (?, ?, ?, 'done', ?) ON CONFLICT DO UPDATE SET state='done', "
                "customer_id=excluded.customer_id",
                [(target, run, ref, customer_id) for ref, customer_id in done.items()],
            )
