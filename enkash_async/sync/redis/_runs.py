"""A distributed sync run's records in Redis: its rows, per-row outcomes and progress.

Keys of run ``R`` (``enkash:run:R:...``): ``meta`` (a hash: target, checkpoint name,
rows, chunks, file, ``ready`` once every row is stored), ``rows:N`` (a list of the
chunk's rows as JSON, deleted when the chunk is done), ``sizes`` (a hash: chunk to its
rows, so a worker tells a chunk Redis lost rows of), ``out:N`` (a hash: file line to
outcome; ``out:rejects`` for rows refused at submit), ``counts`` (a hash: outcome to
rows), ``done`` (a set of the chunks finished), ``figures`` (a hash: the requests, 429
replies and retries of the run's chunks, summed) and, with deactivate-missing, ``listed``
(every ref the file lists) and ``deactivating`` (the job running that step). Outcomes
and counts change together in one Lua script, so the counts always equal the stored
outcomes, and a chunk redone after a crash replaces its rows' outcomes instead of adding
to them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, cast

import attrs
import redis.asyncio as aioredis

from enkash_async.errors import excerpt
from enkash_async.sync.redis._connection import readable, redis_errors, text

__all__ = ["OUTCOMES", "RunStatus", "RunStore", "StoredOutcome"]

#: Every outcome a row can end with ("found": a create-only run's row EnKash had).
OUTCOMES: Final = ("created", "updated", "unchanged", "found", "rejected", "failed")

# Per item: line, value, keep (1: a row found done in the checkpoint that must not replace
# the outcome an earlier attempt recorded for the row, unless that one failed).
_RECORD: Final = """
for i = 1, #ARGV, 3 do
  local line, value, keep = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local kind = string.match(value, '^(%a+)')
  local old = redis.call('HGET', KEYS[1], line)
  local write = true
  if old then
    local old_kind = string.match(old, '^(%a+)')
    if keep == '1' and old_kind ~= 'failed' then
      write = false
    else
      redis.call('HINCRBY', KEYS[2], old_kind, -1)
    end
  end
  if write then
    redis.call('HSET', KEYS[1], line, value)
    redis.call('HINCRBY', KEYS[2], kind, 1)
  end
end
return 1
"""


@attrs.frozen
class StoredOutcome:
    """One row's outcome as the run records it: ``details`` are kept for rejected and
    failed rows (ref, reasons, error) and updated ones (ref, ``changed``: the wire names
    of the fields the PATCH changed, ``active`` among them when toggled)."""

    line: int
    outcome: str
    details: Mapping[str, Any] = attrs.Factory(dict)
    #: A row found done in the checkpoint: it keeps an earlier attempt's outcome of the row.
    keep_existing: bool = False


@attrs.frozen
class RunStatus:
    """Progress of a run: outcome counts, rows, chunks finished, and the run's meta."""

    run: str
    rows: int
    chunks: int
    chunks_done: int
    counts: Mapping[str, int]
    meta: Mapping[str, str]
    #: Requests the run's chunks sent, 429 replies, retries, requests with no reply.
    figures: Mapping[str, int] = attrs.Factory(dict)
    #: The run's target's shared request budget now (``window``, ``rate``, ``in_flight``).
    budget: Mapping[str, float] = attrs.Factory(dict)

    @property
    def settled(self) -> int:
        """Rows with an outcome."""
        return sum(self.counts.get(kind, 0) for kind in OUTCOMES)

    @property
    def known(self) -> bool:
        """Redis holds the run: submitted, every row stored, not lost since."""
        return self.meta.get("ready") == "1"

    @property
    def deactivating(self) -> bool:
        """The run was submitted with ``--deactivate-missing``."""
        return bool(self.meta.get("deactivate"))

    @property
    def create_only(self) -> bool:
        """The run was submitted with ``--create-only``."""
        return self.meta.get("create_only") == "1"

    @property
    def deactivation(self) -> str:
        """``done`` or ``refused`` once the run's deactivate-missing step has ended, else
        ``""`` (pending, or not asked for)."""
        return self.meta.get("deactivation", "")

    @property
    def complete(self) -> bool:
        """Every chunk finished, every submitted row has a final outcome and, with
        deactivate-missing, that step has ended (a run Redis lost, or whose rows it lost,
        is never complete)."""
        return (
            self.known
            and self.chunks > 0
            and self.chunks_done >= self.chunks
            and self.settled >= self.rows
            and (not self.deactivating or self.deactivation in ("done", "refused"))
        )


def _stored_outcome(line: bytes | str, value: bytes | str) -> StoredOutcome:
    """One ``out:N`` entry as recorded; raises ValueError for one enkash_async never wrote."""
    kind, _, details = text(value).partition("\t")
    found = json.loads(details) if details else {}
    if not kind.isidentifier() or not isinstance(found, dict):
        raise ValueError(f"line {text(line)!r}: {excerpt(text(value), 60)!r} is no outcome")
    return StoredOutcome(int(line), kind, found)


class RunStore:
    """Reads and writes the records of run ``run``; every call raises ``SyncStoreError``
    when Redis fails."""

    def __init__(self, redis: aioredis.Redis, url: str, run: str) -> None:
        self._redis = redis
        self._url = url
        self.run = run
        self.prefix = f"enkash:run:{run}"
        self._record = redis.register_script(_RECORD)

    def key(self, name: str) -> str:
        """The Redis key ``name`` of this run."""
        return f"{self.prefix}:{name}"

    async def meta(self) -> dict[str, str]:
        """The run's meta hash (empty when Redis has no such run)."""
        async with redis_errors(self._url, f"reading run {self.run}"):
            raw = await self._redis.hgetall(self.key("meta"))
        with readable(self._url, self.key("meta")):
            return {text(k): text(v) for k, v in raw.items()}

    async def reset(self) -> None:
        """Delete every key of the run (before storing its rows anew)."""
        async with redis_errors(self._url, f"clearing run {self.run}"):
            keys = [key async for key in self._redis.scan_iter(match=f"{self.prefix}:*")]
            for start in range(0, len(keys), 500):
                await self._redis.delete(*keys[start : start + 500])

    async def store_rows(self, rows: Mapping[int, Sequence[str]]) -> None:
        """Append JSON rows to their chunks' lists, in one pipeline."""
        async with (
            redis_errors(self._url, f"storing rows of run {self.run}"),
            self._redis.pipeline(transaction=False) as pipe,
        ):
            for chunk, items in rows.items():
                if items:
                    pipe.rpush(self.key(f"rows:{chunk}"), *items)
            await pipe.execute()

    async def write_sizes(self, sizes: Mapping[int, int]) -> None:
        """Record how many rows each chunk was given."""
        if sizes:
            async with redis_errors(self._url, f"writing run {self.run}"):
                await self._redis.hset(self.key("sizes"), mapping=cast(Any, dict(sizes)))

    async def size(self, chunk: int) -> int | None:
        """How many rows ``chunk`` was given (None: Redis does not know)."""
        async with redis_errors(self._url, f"reading run {self.run}"):
            raw = await self._redis.hget(self.key("sizes"), str(chunk))
        with readable(self._url, self.key("sizes")):
            return None if raw is None else int(raw)

    async def write_meta(self, meta: Mapping[str, str | int]) -> None:
        """Set fields of the meta hash."""
        async with redis_errors(self._url, f"writing run {self.run}"):
            await self._redis.hset(self.key("meta"), mapping=cast(Any, dict(meta)))

    async def rows(self, chunk: int) -> list[dict[str, Any]]:
        """The stored rows of ``chunk`` (empty once the chunk is done)."""
        async with redis_errors(self._url, f"reading chunk {chunk} of run {self.run}"):
            raw = await self._redis.lrange(self.key(f"rows:{chunk}"), 0, -1)
        return [json.loads(item) for item in raw]

    async def record(self, chunk: int | str, outcomes: Sequence[StoredOutcome]) -> None:
        """Record ``outcomes`` of ``chunk``'s rows (replacing earlier ones), counts too."""
        if not outcomes:
            return
        args: list[str | int] = []
        for item in outcomes:
            value = item.outcome
            if item.details:
                value += "\t" + json.dumps(dict(item.details), separators=(",", ":"))
            args += [item.line, value, int(item.keep_existing)]
        async with redis_errors(self._url, f"recording outcomes of run {self.run}"):
            await self._record(keys=[self.key(f"out:{chunk}"), self.key("counts")], args=args)

    async def finish_chunk(self, chunk: int) -> bool:
        """Mark ``chunk`` done and drop its stored rows, atomically; whether this call
        marked it (False: another job of the chunk had, so it counts once)."""
        async with (
            redis_errors(self._url, f"finishing chunk {chunk} of run {self.run}"),
            self._redis.pipeline(transaction=True) as pipe,
        ):
            pipe.sadd(self.key("done"), chunk)
            pipe.delete(self.key(f"rows:{chunk}"))
            added, _ = await pipe.execute()
        return bool(added)

    async def add_figures(self, figures: Mapping[str, int]) -> None:
        """Add a chunk job's request figures to the run's."""
        if not any(figures.values()):
            return
        async with (
            redis_errors(self._url, f"recording request figures of run {self.run}"),
            self._redis.pipeline(transaction=True) as pipe,
        ):
            for name, value in figures.items():
                if value:
                    pipe.hincrby(self.key("figures"), name, value)
            await pipe.execute()

    async def add_listed(self, refs: Sequence[str]) -> None:
        """Add ``refs`` to the refs the run's file lists (for deactivate-missing)."""
        if refs:
            async with redis_errors(self._url, f"storing refs of run {self.run}"):
                await self._redis.sadd(self.key("listed"), *refs)

    async def iter_listed(self) -> AsyncIterator[str]:
        """Every ref the run's file lists (as ``add_listed`` stored them)."""
        async with redis_errors(self._url, f"reading refs of run {self.run}"):
            async for ref in self._redis.sscan_iter(self.key("listed"), count=1000):
                yield text(ref)

    async def take_deactivation(self, owner: str) -> bool:
        """Whether ``owner`` (a job key) runs the run's deactivate-missing step: the first
        to ask takes it for good, and only a retry of that same job gets it again."""
        async with redis_errors(self._url, f"writing run {self.run}"):
            if await self._redis.set(self.key("deactivating"), owner, nx=True):
                return True
            return text(await self._redis.get(self.key("deactivating")) or b"") == owner

    async def deactivation_owner(self) -> str | None:
        """The job key that took the run's deactivate-missing step (None: no job yet)."""
        async with redis_errors(self._url, f"reading run {self.run}"):
            owner = await self._redis.get(self.key("deactivating"))
        return None if owner is None else text(owner)

    async def chunks_done(self) -> set[int]:
        """The chunks finished so far."""
        async with redis_errors(self._url, f"reading run {self.run}"):
            members = await self._redis.smembers(self.key("done"))
        with readable(self._url, self.key("done")):
            return {int(text(member)) for member in members}

    async def status(self) -> RunStatus:
        """The run's progress now; ``rows`` and ``chunks`` are 0 for an unknown run."""
        async with (
            redis_errors(self._url, f"reading run {self.run}"),
            self._redis.pipeline(transaction=True) as pipe,
        ):
            pipe.hgetall(self.key("meta"))
            pipe.hgetall(self.key("counts"))
            pipe.scard(self.key("done"))
            pipe.hgetall(self.key("figures"))
            meta_raw, counts_raw, done, figures_raw = await pipe.execute()
        with readable(self._url, self.key("meta")):
            meta = {text(k): text(v) for k, v in meta_raw.items()}
            rows, chunks = int(meta.get("rows", 0)), int(meta.get("chunks", 0))
        counts = {kind: 0 for kind in OUTCOMES}
        with readable(self._url, self.key("counts")):
            counts.update({text(k): int(v) for k, v in counts_raw.items()})
        with readable(self._url, self.key("figures")):
            figures = {text(k): int(v) for k, v in figures_raw.items()}
        return RunStatus(
            run=self.run,
            rows=rows,
            chunks=chunks,
            chunks_done=int(done),
            counts=counts,
            meta=meta,
            figures=figures,
        )

    async def outcomes(self) -> AsyncIterator[StoredOutcome]:
        """Every recorded outcome, chunk by chunk (rows refused at submit first)."""
        meta = await self.meta()
        with readable(self._url, self.key("meta")):
            chunks = ["rejects", *range(int(meta.get("chunks", 0)))]
        for chunk in chunks:
            async with redis_errors(self._url, f"reading outcomes of run {self.run}"):
                raw = await self._redis.hgetall(self.key(f"out:{chunk}"))
            with readable(self._url, self.key(f"out:{chunk}")):
                stored = [_stored_outcome(line, value) for line, value in raw.items()]
            for outcome in sorted(stored, key=lambda item: item.line):
                yield outcome
