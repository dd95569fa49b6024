"""The distributed sync on SAQ: a run split into chunks, one SAQ job per chunk.

``submit`` reads a file once, puts each valid row in a bucket by a hash of its
``unique_ref_no`` (so rows repeating a ref meet in one chunk, and one worker) and
stores each chunk's rows in Redis, then enqueues one job per chunk under the key
``RUN:CHUNK``: SAQ enqueues a key at most once while it is unfinished, and a finished
chunk is never enqueued again, so resubmitting a run enqueues only what is left.

Rows live in Redis, not in a shared file read by byte ranges: workers on other machines
need no shared filesystem, a file edited after submit cannot change a run under way,
and a bucket's rows are scattered through the file anyway. The cost is Redis memory of
about the file's size while a chunk is pending (its rows are deleted when it is done).

A worker runs each job through :func:`_sync_chunk_rows`, the one call into the
engine-independent sync core. Its heartbeat touches the job every few seconds; a
worker that dies stops touching it, SAQ's sweep (run by every worker) finds the job
stale and queues it again, and the checkpoint makes redoing it safe: rows done are
skipped, rows intended are looked up before any create.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

import attrs
from redis.exceptions import RedisError
from saq import Job, Worker
from saq.queue.redis import RedisQueue
from saq.types import PartialTimersDict

from enkash_async import (
    CustomerCreate,
    EnkashClient,
    EnkashError,
    FieldError,
    LoginError,
    PasswordCredentials,
    ValidationError,
)
from enkash_async._hooks import SYNC_CHUNK, CallRecord
from enkash_async._unset import UNSET
from enkash_async.sync._checkpoint import SyncTarget
from enkash_async.sync._compare import row_fingerprint
from enkash_async.sync._core import (
    DeactivationRefusedError,
    KnownRefs,
    SyncOutcome,
    _rejected_ref,
    deactivate_missing,
    sync_rows,
)
from enkash_async.sync._sources import SourceRow, count_rows, read_file
from enkash_async.sync.redis._budget import RedisLimiter, budget_state
from enkash_async.sync.redis._checkpoint import RedisCheckpoint, checkpoint_epoch
from enkash_async.sync.redis._connection import (
    REDIS_TIMEOUT,
    EvictionPolicyError,
    StateLostError,
    SyncStoreError,
    check_eviction_policy,
    connect,
    redacted,
    redis_errors,
    text,
)
from enkash_async.sync.redis._figures import RunFigures, chunk_figures
from enkash_async.sync.redis._logins import LoginGate
from enkash_async.sync.redis._runs import RunStatus, RunStore, StoredOutcome

__all__ = [
    "JOB_FUNCTION",
    "QUEUE_NAME",
    "SubmitResult",
    "SyncRunError",
    "WorkerSettings",
    "bucket_of",
    "run_status",
    "run_worker",
    "submit",
]

logger = logging.getLogger("enkash_async.sync")

QUEUE_NAME: Final = "enkash-sync"
# The set of runs with chunks not done, and the lock of the worker reviving lost chunks.
_RUNS: Final = "enkash:runs"
_REVIVE_LOCK: Final = "enkash:runs:revive-lock"
# A job failing (Redis unreachable) is retried this often, with backoff up to 30 s.
_JOB_RETRIES: Final = 1000
JOB_FUNCTION: Final = "enkash_sync_chunk"
# Rows buffered at submit before one pipeline writes them.
_STORE_BATCH: Final = 2000
# Seconds between flushes of a job's buffered outcomes to Redis.
_FLUSH_EVERY: Final = 0.1
# Seconds a stopping worker waits for its chunks under way (then they are redone).
_SHUTDOWN_GRACE: Final = 5.0


def bucket_of(ref: str, chunks: int) -> int:
    """The chunk of ``unique_ref_no`` ``ref`` among ``chunks`` (stable across machines)."""
    digest = hashlib.blake2b(ref.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % chunks


def new_run_id() -> str:
    """A fresh run id: UTC time and a random suffix, e.g. ``20261130-041500-3fa2c1``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


@attrs.frozen
class WorkerSettings:
    """How a worker runs chunks and shares the request budget.

    ``concurrency`` requests in flight per worker, ``jobs`` chunks at once per worker;
    the budget shared by all workers of the target: ``max_concurrency`` in flight and
    ``rate_limit`` per second (None: no rate limit), AIMD on both. A job not touched for
    ``heartbeat`` seconds is stale; every ``sweep`` seconds a worker queues stale jobs
    again after waiting ``sweep_wait`` seconds for their worker to let go. ``lease_ttl``:
    seconds after which a dead worker's request slots come back. A chunk's failed rows
    are tried again, ``pass_delay`` seconds later, for up to ``passes`` passes in all.
    """

    concurrency: int = 16
    jobs: int = 1
    max_concurrency: int = 64
    rate_limit: float | None = None
    heartbeat: int = 10
    sweep: int = 5
    sweep_wait: float = 2.0
    lease_ttl: float = 90.0
    passes: int = 3
    pass_delay: float = 1.0


class _SyncWorker(Worker[Any]):
    """SAQ's worker, stopping cleanly: no new chunk is taken, the chunks under way get
    ``_SHUTDOWN_GRACE`` seconds (else they are redone elsewhere), then SAQ's own idle
    loops are ended here, so its stop has nothing left to wait for (it would warn about
    a grace period on every clean shutdown)."""

    def __init__(self, idle: Callable[[float], Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle = idle

    async def stop(self) -> None:
        self.event.set()
        await self._idle(_SHUTDOWN_GRACE)
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await super().stop()


class _SyncQueue(RedisQueue):
    """SAQ's Redis queue, waiting ``sweep_wait`` for a stale job's worker (not SAQ's
    fixed 5 s), and riding out a Redis outage in ``dequeue`` instead of spinning."""

    def __init__(self, *args: Any, sweep_wait: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sweep_wait = sweep_wait

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        return await super().sweep(lock, abort=self.sweep_wait)

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        try:
            return await super().dequeue(timeout, poll_interval)
        except (RedisError, OSError) as exc:
            logger.warning("Redis unreachable while waiting for a chunk (%s); retrying", exc)
            await asyncio.sleep(1.0)
            return None


async def _disconnect(queue: RedisQueue) -> None:
    """Close the queue's connections; a Redis already gone has nothing left to close."""
    with contextlib.suppress(RedisError, OSError):
        await queue.disconnect()


def make_queue(url: str, *, sweep_wait: float = 2.0) -> RedisQueue:
    """The SAQ queue of distributed syncs on the Redis at ``url``."""
    return _SyncQueue(connect(url), name=QUEUE_NAME, sweep_wait=sweep_wait)


class SyncRunError(EnkashError):
    """A worker cannot work on a run: Redis does not know it, or it is for another target."""


# ---- submit -----------------------------------------------------------------------


@attrs.frozen
class SubmitResult:
    """What ``submit`` did: the run id, rows read, chunks, and jobs enqueued now."""

    run: str
    rows: int
    chunks: int
    enqueued: int
    rejected: int


def _read_source(path: str) -> Iterator[SourceRow]:
    """The rows of ``path`` (the sync core's reader)."""
    return read_file(path)


async def submit(
    url: str,
    path: str,
    *,
    target: SyncTarget,
    run: str | None = None,
    chunk_rows: int = 500,
    checkpoint: str = "default",
    settings: WorkerSettings | None = None,
    lost_state: bool = False,
    deactivate_missing: float | None = None,
    create_only: bool = False,
) -> SubmitResult:
    """Store the rows of ``path`` as run ``run`` (a new id when None) and enqueue its chunks.

    Resubmitting a run whose rows are stored enqueues only its unfinished chunks.
    ``checkpoint`` names the checkpoint the run shares with earlier runs of the target
    (refs done there are not created again). ``lost_state``: Redis lost the checkpoint,
    so every ref not done is looked up before it is created. ``deactivate_missing`` (a
    share, 0 to 1): once every chunk is done, one worker deactivates the customers this
    checkpoint created or saw that the file no longer lists, refused (nothing sent) when
    they are more than that share of the known ones. ``create_only``: every worker syncs
    the run's rows as ``customers import --create-only`` does (a customer EnKash has is
    ``found``, never compared or updated). ``lost_state``, ``deactivate_missing`` and
    ``create_only`` are the run's from its first submit. Raises ``SyncStoreError``
    when Redis fails, and ``OSError`` or the reader's errors for an unreadable file.
    """
    if chunk_rows < 1:
        raise ValidationError([FieldError("chunk_rows", "must be at least 1")])
    if deactivate_missing is not None and not 0 <= deactivate_missing <= 1:
        raise ValidationError([FieldError("deactivate_missing", "must be a share from 0 to 1")])
    settings = settings or WorkerSettings()
    run = run or new_run_id()
    redis = connect(url)
    queue = make_queue(url)
    try:
        await check_eviction_policy(redis, url)
        store = RunStore(redis, url, run)
        meta = await store.meta()
        rejected = 0
        if meta.get("ready") != "1":
            await store.reset()
            epoch = await checkpoint_epoch(redis, url, target, checkpoint)
            listing = deactivate_missing is not None
            rows, chunks, rejected = await _store_rows(store, path, chunk_rows, listing)
            extra = {} if deactivate_missing is None else {"deactivate": repr(deactivate_missing)}
            await store.write_meta(
                {
                    **extra,
                    "target": target.key,
                    "checkpoint": checkpoint,
                    "checkpoint_epoch": epoch,
                    "file": path,
                    "rows": rows,
                    "chunks": chunks,
                    "rejected": rejected,
                    "submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "heartbeat": settings.heartbeat,
                    "lost_state": int(lost_state),
                    "create_only": int(create_only),
                    "ready": "1",
                }
            )
        else:
            rows, chunks = int(meta["rows"]), int(meta["chunks"])
            rejected = int(meta.get("rejected", 0))
        enqueued = await _enqueue(queue, store, run, range(chunks), settings.heartbeat)
        step = await _deactivation_chunk(store)
        if not enqueued and step is not None:
            enqueued = await _enqueue(queue, store, run, [step], settings.heartbeat, done_too=True)
        async with redis_errors(url, "listing the run"):
            await redis.sadd(_RUNS, run)
    finally:
        await _disconnect(queue)
        await redis.aclose()
    return SubmitResult(run, rows, chunks, enqueued, rejected)


async def _store_rows(
    store: RunStore, path: str, chunk_rows: int, listing: bool = False
) -> tuple[int, int, int]:
    """Read ``path`` into its chunks (and, when ``listing``, every ref it holds, invalid
    rows' too, into the run's listed refs); (rows, chunks, rows rejected unsent)."""
    chunks = max(1, math.ceil(count_rows(path) / chunk_rows))
    pending: dict[int, list[str]] = {}
    sizes: dict[int, int] = {}
    held = rows = rejected = 0
    refused: list[StoredOutcome] = []
    listed: list[str] = []
    for row in _read_source(path):
        rows += 1
        if listing and row.ref:
            listed.append(row.ref)
        refusal = _rejected_ref(row)  # the core's rule, so both paths reject alike
        if refusal is not None or row.customer is None or not row.customer.unique_ref_no:
            reasons = list(refusal.reasons) if refusal is not None else list(row.problems)
            details = {"line": row.line, "uniqueRefNo": row.ref, "reasons": reasons}
            refused.append(StoredOutcome(row.line, "rejected", details))
            rejected += 1
        else:
            ref = row.customer.unique_ref_no
            item = json.dumps(_stored_row(row))
            bucket = bucket_of(ref, chunks)
            pending.setdefault(bucket, []).append(item)
            sizes[bucket] = sizes.get(bucket, 0) + 1
            held += 1
        if held >= _STORE_BATCH or len(refused) >= _STORE_BATCH or len(listed) >= _STORE_BATCH:
            await store.store_rows(pending)
            await store.record("rejects", refused)
            await store.add_listed(listed)
            pending, refused, listed, held = {}, [], [], 0
    await store.store_rows(pending)
    await store.record("rejects", refused)
    await store.add_listed(listed)
    await store.write_sizes(sizes)
    return rows, chunks, rejected


def _stored_row(row: SourceRow) -> dict[str, Any]:
    """A valid row as a chunk stores it: the customer, what the row says of the fields a
    create cannot set (absent: it says nothing), and its fingerprint, so the worker
    compares and records it exactly as the single-process sync would."""
    assert row.customer is not None
    item: dict[str, Any] = {
        "line": row.line,
        "row": row.customer.to_dict(),
        "fingerprint": row_fingerprint(row),
    }
    if row.active is not None:
        item["active"] = row.active
    if row.assigned_agent is not UNSET:
        item["assignedAgent"] = row.assigned_agent
    if row.branch_codes is not UNSET:
        item["branchCodes"] = None if row.branch_codes is None else list(row.branch_codes)
    return item


def _loaded_row(item: Mapping[str, Any]) -> SourceRow:
    """A stored row back as the sync core reads it (raises for a malformed one)."""
    active = item.get("active")
    agent = item.get("assignedAgent", UNSET)
    branches = item.get("branchCodes", UNSET)
    fingerprint = item.get("fingerprint")
    if not (
        (active is None or isinstance(active, bool))
        and (agent is UNSET or agent is None or isinstance(agent, str))
        and (
            branches is UNSET
            or branches is None
            or (isinstance(branches, list) and all(isinstance(code, str) for code in branches))
        )
        and (fingerprint is None or isinstance(fingerprint, str))
    ):
        raise ValidationError(
            [FieldError("row", "a stored row's active, assignedAgent, branchCodes or fingerprint")]
        )
    return SourceRow(
        int(item["line"]),
        CustomerCreate.from_dict(item["row"]),
        active=active,
        assigned_agent=agent,
        branch_codes=tuple(branches) if isinstance(branches, list) else branches,
        fingerprint=fingerprint,
    )


async def _enqueue(
    queue: RedisQueue,
    store: RunStore,
    run: str,
    chunks: Iterable[int],
    heartbeat: int,
    *,
    done_too: bool = False,
) -> int:
    """Enqueue the jobs of ``chunks`` not done yet (``done_too``: done ones as well, for a
    run's deactivate-missing step); how many SAQ took (it refuses a key it holds
    unfinished)."""
    done = set() if done_too else await store.chunks_done()
    enqueued = 0
    async with redis_errors(store._url, f"enqueuing the chunks of run {run}"):
        for chunk in chunks:
            if chunk in done:
                continue
            job = await queue.enqueue(
                JOB_FUNCTION,
                key=f"{run}:{chunk}",
                timeout=0,  # a chunk takes as long as it takes; the heartbeat tells a dead one
                heartbeat=heartbeat,
                retries=_JOB_RETRIES,
                retry_delay=1.0,
                retry_backoff=30.0,
                ttl=7 * 86400,
                run=run,
                chunk=chunk,
            )
            enqueued += job is not None
    return enqueued


async def _deactivation_chunk(store: RunStore) -> int | None:
    """The chunk whose job is to run the deactivate-missing step of a run whose chunks are
    all done and whose step has not ended (the job that took it, else the last chunk's);
    None when there is no such step to run."""
    status = await store.status()
    if not (status.known and status.deactivating) or status.deactivation:
        return None
    if status.chunks < 1 or status.chunks_done < status.chunks:
        return None
    owner = await store.deactivation_owner()
    run, _, chunk = (owner or "").rpartition(":")
    if run == store.run and chunk.isdigit() and int(chunk) < status.chunks:
        return int(chunk)
    return status.chunks - 1


class _Reviver:
    """A safety net under SAQ's sweep: a chunk not done whose job SAQ no longer holds
    (queued, scheduled or active), seen so twice in a row, is enqueued again.

    SAQ's sweep aborts a stale job, waits, then requeues it in a separate call; if Redis
    fails between the two, the job is dropped. Only one worker revives at a time.
    """

    def __init__(self, queue: RedisQueue, redis: Any, url: str) -> None:
        self.queue = queue
        self.redis = redis
        self.url = url
        self.suspects: set[str] = set()

    async def once(self, lock_seconds: int) -> int:
        """One pass over the runs under way; how many chunks were enqueued again."""
        async with redis_errors(self.url, "looking for lost chunks"):
            if not await self.redis.set(_REVIVE_LOCK, 1, nx=True, ex=lock_seconds):
                return 0
            runs = [text(run) for run in await self.redis.smembers(_RUNS)]
        revived = 0
        lost_now: set[str] = set()
        for run in runs:
            store = RunStore(self.redis, self.url, run)
            status = await store.status()
            if status.meta.get("ready") != "1":
                continue
            if status.complete:
                async with redis_errors(self.url, "listing the run"):
                    await self.redis.srem(_RUNS, run)
                continue
            done = await store.chunks_done()
            missing = [chunk for chunk in range(status.chunks) if chunk not in done]
            step = None if missing else await _deactivation_chunk(store)
            if step is not None:
                missing = [step]  # every chunk done, the deactivate-missing step not
            async with (
                redis_errors(self.url, "looking for lost chunks"),
                self.redis.pipeline(transaction=False) as pipe,
            ):
                for chunk in missing:
                    pipe.zscore(
                        self.queue.namespace("incomplete"), self.queue.job_id(f"{run}:{chunk}")
                    )
                scores = await pipe.execute()
            lost = [chunk for chunk, score in zip(missing, scores, strict=True) if score is None]
            again = [chunk for chunk in lost if f"{run}:{chunk}" in self.suspects]
            lost_now.update(f"{run}:{chunk}" for chunk in lost if chunk not in again)
            if again:
                heartbeat = int(status.meta.get("heartbeat", 10))
                count = await _enqueue(
                    self.queue, store, run, again, heartbeat, done_too=step is not None
                )
                if count:
                    logger.warning(
                        "run %s: chunks %s were lost by the queue; enqueued again", run, again
                    )
                revived += count
        self.suspects = lost_now
        return revived

    async def forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.once(max(1, int(every)))
            except SyncStoreError as exc:
                logger.warning("%s; will look for lost chunks again later", exc)


async def run_status(url: str, run: str) -> RunStatus:
    """The progress of ``run``. Raises ``SyncStoreError`` when Redis fails."""
    redis = connect(url)
    try:
        status = await RunStore(redis, url, run).status()
        if "target" not in status.meta:
            return status
        budget = await budget_state(redis, url, status.meta["target"])
        return attrs.evolve(status, budget=budget)
    finally:
        await redis.aclose()


# ---- worker -----------------------------------------------------------------------


async def _sync_chunk_rows(
    rows: Iterable[SourceRow],
    *,
    client: EnkashClient,
    checkpoint: RedisCheckpoint,
    concurrency: int,
    on_outcome: Callable[[SyncOutcome], None],
    create_only: bool = False,
) -> None:
    """The one call into the engine-independent sync core: the upsert (``create_only``:
    the create-only sync)."""
    await sync_rows(
        rows,
        client=client,
        checkpoint=checkpoint,
        concurrency=concurrency,
        on_outcome=on_outcome,
        create_only=create_only,
    )


# A row found done (by this run's earlier attempt, or by another owner it waited for)
# keeps the outcome an earlier attempt of the chunk recorded for it.
_KEEPS_EARLIER: Final = ("checkpoint", "another run")


def _stored(outcome: SyncOutcome) -> StoredOutcome:
    kind = outcome.outcome.value
    keep = outcome.detail in _KEEPS_EARLIER
    if kind in ("created", "found", "unchanged"):
        return StoredOutcome(outcome.line, kind, keep_existing=keep)
    details: dict[str, Any] = {"line": outcome.line, "uniqueRefNo": outcome.ref}
    if kind == "updated":
        details["changed"] = list(outcome.changed)
        return StoredOutcome(outcome.line, kind, details)
    if outcome.reasons:
        details["reasons"] = list(outcome.reasons)
    if outcome.error is not None:
        details["error"] = f"{type(outcome.error).__name__}: {outcome.error}"[:500]
    return StoredOutcome(outcome.line, kind, details)


def _login_refusal(error: BaseException | None) -> LoginError | None:
    """The refused login behind a row's failure, if that is what it was."""
    while error is not None:
        if isinstance(error, LoginError):
            return error
        error = error.__cause__
    return None


class _Chunk:
    """One job's run of one chunk: rows in, outcomes out (buffered, flushed often)."""

    def __init__(self, store: RunStore, chunk: int) -> None:
        self.store = store
        self.chunk = chunk
        self.buffer: list[StoredOutcome] = []
        self.store_failure: EnkashError | None = None
        self.failed_lines: set[int] = set()
        self.stopped = asyncio.Event()
        self.login_refusal: LoginError | None = None

    def on_outcome(self, outcome: SyncOutcome) -> None:
        if isinstance(outcome.error, SyncStoreError):
            # Redis failed, not the row: the chunk is redone once Redis is back.
            self.store_failure = self.store_failure or outcome.error
            return
        refusal = _login_refusal(outcome.error)
        if refusal is not None:
            # The login failed, not the row: the chunk is redone with good credentials.
            self.login_refusal = self.login_refusal or refusal
            return
        if outcome.outcome.value == "failed":
            self.failed_lines.add(outcome.line)
        self.buffer.append(_stored(outcome))

    async def flush(self) -> None:
        batch, self.buffer = self.buffer, []
        try:
            await self.store.record(self.chunk, batch)
        except BaseException:
            self.buffer[:0] = batch
            raise

    async def flush_often(self) -> None:
        """Flush every ``_FLUSH_EVERY`` s until ``stopped``; never cancelled mid-write."""
        while not self.stopped.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), _FLUSH_EVERY)
            if self.buffer and not self.stopped.is_set():
                with contextlib.suppress(SyncStoreError):  # kept, flushed at the end
                    await self.flush()


async def _heartbeat(job: Job, every: float, stopped: asyncio.Event) -> None:
    """Touch ``job`` every ``every`` s until ``stopped`` (a write is never cut short)."""
    while not stopped.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopped.wait(), every)
        if stopped.is_set():
            return
        try:
            await job.update()
        except (RedisError, OSError) as exc:
            logger.warning("heartbeat of %s failed: %s", job.key, exc)


async def _join(task: asyncio.Task[None], stopped: asyncio.Event) -> None:
    """Stop a helper task by its event and wait for it; on our own cancellation, cancel it."""
    stopped.set()
    try:
        await asyncio.wait({task}, timeout=2 * REDIS_TIMEOUT)
    finally:
        if not task.done():
            task.cancel()


class _WorkerJob:
    """The job function, bound to one worker's client, Redis and settings."""

    def __init__(
        self,
        url: str,
        client: EnkashClient,
        target: SyncTarget,
        settings: WorkerSettings,
        credentials: PasswordCredentials | None = None,
    ) -> None:
        self.url = url
        self.client = client
        self.target = target
        self.settings = settings
        self.redis = connect(url, max_connections=max(128, settings.concurrency * 4))
        self.gate = LoginGate(self.redis, url, target, credentials)
        #: Set when EnKash refused the login: the worker stops, and raises ``refusal``.
        self.halt = asyncio.Event()
        self.refusal: LoginError | None = None
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def idle(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the chunks under way to finish."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    def _stop_for(self, refusal: LoginError) -> LoginError:
        self.refusal = self.refusal or refusal
        self.halt.set()
        return refusal

    async def __call__(self, ctx: Any, *, run: str, chunk: int) -> dict[str, int]:
        self.active += 1
        self._idle.clear()
        try:
            return await self._run(ctx, run=run, chunk=chunk)
        finally:
            self.active -= 1
            if not self.active:
                self._idle.set()

    async def _run(self, ctx: Any, *, run: str, chunk: int) -> dict[str, int]:
        try:
            await self.gate.check()  # another worker's login was refused: send nothing
        except LoginError as exc:
            raise self._stop_for(exc) from None
        job: Job = ctx["job"]
        # The submitter set the job's heartbeat; touch it three times per period.
        stopped = asyncio.Event()
        beat = asyncio.create_task(_heartbeat(job, max(0.2, (job.heartbeat or 10) / 3), stopped))
        logger.info("chunk %s of run %s: attempt %d", chunk, run, job.attempts)
        try:
            result = await self.sync_chunk(run, chunk)
            state = "done by another job already" if result.get("repeated") else "done"
            logger.info("chunk %s of run %s: %s (%s)", chunk, run, state, result)
            return result
        finally:
            await _join(beat, stopped)

    async def _done_already(
        self, store: RunStore, meta: Mapping[str, str], run: str, chunk: int
    ) -> dict[str, int]:
        """A job of a chunk another job finished: nothing to send but the run's last step."""
        await self.deactivate_missing(store, meta, f"{run}:{chunk}")
        return {"rows": 0, "repeated": 1}

    async def sync_chunk(self, run: str, chunk: int) -> dict[str, int]:
        store = RunStore(self.redis, self.url, run)
        meta = await store.meta()
        if meta.get("ready") != "1":
            raise StateLostError(
                f"Redis has no run {run!r} although its chunk {chunk} was queued: Redis lost "
                "its data (flushed, restarted without persistence, or evicted). Resubmit the "
                "file with --lost-state",
                url=redacted(self.url),
                operation=f"reading run {run}",
            )
        if meta["target"] != self.target.key:
            raise SyncRunError(
                f"run {run!r} is for {meta['target']}, but this worker is set up for "
                f"{self.target.key}"
            )
        if chunk in await store.chunks_done():
            return await self._done_already(store, meta, run, chunk)
        rows = [_loaded_row(item) for item in await store.rows(chunk)]
        expected = await store.size(chunk)
        if expected is None or len(rows) != expected:
            # Finishing a chunk drops its rows and marks it done at once: rows gone and the
            # chunk done means another job of it finished meanwhile, not that Redis lost them.
            if chunk in await store.chunks_done():
                return await self._done_already(store, meta, run, chunk)
            raise StateLostError(
                f"chunk {chunk} of run {run!r} has {len(rows)} of its "
                f"{'unknown number of' if expected is None else expected} rows in Redis: "
                "Redis lost them (evicted, flushed or deleted). The run cannot complete; "
                "resubmit the file with --lost-state",
                url=redacted(self.url),
                operation=f"reading chunk {chunk} of run {run}",
            )
        checkpoint = RedisCheckpoint(
            self.redis,
            self.url,
            self.target,
            meta["checkpoint"],
            lost_state=meta.get("lost_state") == "1",
            epoch=meta.get("checkpoint_epoch") or None,
        )
        work = _Chunk(store, chunk)
        flusher = asyncio.create_task(work.flush_often())
        pending = rows
        try:
            for attempt in range(1, self.settings.passes + 1):
                work.failed_lines.clear()
                await _sync_chunk_rows(
                    pending,
                    client=self.client,
                    checkpoint=checkpoint,
                    concurrency=self.settings.concurrency,
                    on_outcome=work.on_outcome,
                    # The run's mode, set at submit: every worker syncs its chunks alike.
                    create_only=meta.get("create_only") == "1",
                )
                if work.store_failure is not None:
                    raise work.store_failure
                if work.login_refusal is not None:
                    count = await self.gate.refused(work.login_refusal)
                    reason = work.login_refusal.api_message or str(work.login_refusal)
                    raise self._stop_for(self.gate._error(reason, count, earlier=False))
                if not work.failed_lines or attempt == self.settings.passes:
                    break
                # Failures are mostly passing (an outage, a lost reply): try those rows again.
                pending = [row for row in rows if row.line in work.failed_lines]
                await asyncio.sleep(self.settings.pass_delay)
        finally:
            await _join(flusher, work.stopped)
            await checkpoint.aclose()
        await work.flush()
        first = await store.finish_chunk(chunk)
        await self.deactivate_missing(store, meta, f"{run}:{chunk}")
        result = {"rows": len(rows), "failed": len(work.failed_lines)}
        # Two jobs of one chunk at once (SAQ's sweep): the one that finished it second.
        return result if first else {**result, "repeated": 1}

    async def deactivate_missing(self, store: RunStore, meta: Mapping[str, str], job: str) -> None:
        """The run's deactivate-missing step, once every chunk is done, by one job (the
        first to get there; a retry of that job, after its worker died, takes it up again:
        customers deactivated already are not sent again). A refusal ends the step too."""
        if not meta.get("deactivate") or meta.get("deactivation"):
            return
        status = await store.status()
        if status.deactivation or status.chunks_done < status.chunks:
            return
        if not await store.take_deactivation(job):
            return
        checkpoint = RedisCheckpoint(
            self.redis,
            self.url,
            self.target,
            meta["checkpoint"],
            epoch=meta.get("checkpoint_epoch") or None,
        )
        listed = KnownRefs()
        try:
            batch: list[tuple[str]] = []
            async for ref in store.iter_listed():
                batch.append((ref,))
                if len(batch) >= _STORE_BATCH:
                    listed.add_many(batch)
                    batch = []
            listed.add_many(batch)
            try:
                summary = await deactivate_missing(
                    self.client,
                    checkpoint,
                    listed,
                    max_share=float(meta["deactivate"]),
                    concurrency=self.settings.concurrency,
                )
            except DeactivationRefusedError as exc:
                logger.warning("run %s: %s", store.run, exc)
                await store.write_meta(
                    {
                        "deactivation": "refused",
                        "deactivation_error": str(exc),
                        "deactivation_share_needed": f"{exc.share_needed:g}",
                    }
                )
                return
        finally:
            listed.close()
            await checkpoint.aclose()
        logger.info("run %s: %d deactivated as missing", store.run, summary.deactivated)
        await store.write_meta(
            {
                "deactivation": "done",
                "deactivated": summary.deactivated,
                "deactivate_failed": summary.failed,
            }
        )


async def wait_for_redis(redis: Any, url: str, *, every: float = 60.0) -> str:
    """Wait until Redis answers (saying so once, then every ``every`` seconds), then check
    its eviction policy; the policy. Raises ``EvictionPolicyError`` for an unsafe one."""
    waited_since: float | None = None
    said_at = 0.0
    delay = 0.5
    while True:
        try:
            policy = await check_eviction_policy(redis, url)
        except EvictionPolicyError:
            raise
        except SyncStoreError as exc:
            now = time.monotonic()
            if waited_since is None:
                waited_since = said_at = now
                logger.warning("waiting for Redis at %s (%s)", redacted(url), exc.__cause__ or exc)
            elif now - said_at >= every:
                said_at = now
                logger.warning(
                    "still waiting for Redis at %s (%.0f s so far)",
                    redacted(url),
                    now - waited_since,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        if waited_since is not None:
            logger.warning("Redis at %s answers again", redacted(url))
        return policy


async def run_worker(
    url: str,
    client: EnkashClient,
    target: SyncTarget,
    settings: WorkerSettings | None = None,
    *,
    stop: asyncio.Event | None = None,
    credentials: PasswordCredentials | None = None,
) -> None:
    """Run chunks of every run for ``target`` from the Redis at ``url`` until ``stop`` is
    set (or SIGINT/SIGTERM). ``client`` must use a limiter from :func:`shared_limiter`
    for the budget to be shared. With ``credentials`` (the client's password login),
    the worker logs in first under the lock every worker of the target shares.

    Raises ``EvictionPolicyError`` for a Redis that may evict the sync's keys, and
    ``LoginError`` when EnKash refused these credentials (this worker's login or any
    other's): every worker of the target then stops.
    """
    settings = settings or WorkerSettings()
    queue = make_queue(url, sweep_wait=settings.sweep_wait)
    job = _WorkerJob(url, client, target, settings, credentials)
    try:
        await wait_for_redis(job.redis, url)
        await job.gate.first_login(client)
    except BaseException:
        await _disconnect(queue)
        await job.redis.aclose()
        raise

    # Every chunk's requests, 429s and retries, added to its run's figures for `sync status`.
    figures = RunFigures()
    client._observer.attach(figures)

    # A plain coroutine function: SAQ runs any other callable in a thread.
    async def enkash_sync_chunk(ctx: Any, *, run: str, chunk: int) -> dict[str, int]:
        with client._observer.batch(SYNC_CHUNK, run=run, chunk=chunk) as batch:  # rows, metrics
            try:
                result = await job(ctx, run=run, chunk=chunk)
                if result.get("repeated") and isinstance(batch, CallRecord):
                    batch.details["repeated"] = True  # see chunk_repeated: done once a chunk
                return result
            finally:
                await _add_figures(job.redis, url, run, chunk_figures(batch.state))

    timers: PartialTimersDict = {
        "sweep": settings.sweep,
        "schedule": 1,
        "abort": 1,
        "worker_info": 10,
    }
    worker = _SyncWorker(
        job.idle,
        queue,
        functions=[(JOB_FUNCTION, enkash_sync_chunk)],
        concurrency=settings.jobs,
        timers=timers,
        dequeue_timeout=1.0,
        shutdown_grace_period_s=2,
        # Host and pid in the id, so a job's worker_id names the process that ran it.
        id=f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}",
    )
    reviver = asyncio.create_task(
        _Reviver(queue, job.redis, url).forever(max(3.0, settings.sweep * 3.0))
    )
    worker.SIGNALS = []  # ours below: a signal stops the worker through _SyncWorker.stop
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stopping.set)
            handled.append(signum)
    await queue.connect()
    running = asyncio.create_task(worker.start())
    try:
        waits = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(job.halt.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait([running, *waits], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        await worker.stop()
        await running
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        if not running.done():
            running.cancel()
        reviver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reviver
        client._observer.detach(figures)
        await _disconnect(queue)
        await job.redis.aclose()
    if job.refusal is not None:
        raise job.refusal


async def _add_figures(redis: Any, url: str, run: str, figures: Mapping[str, int]) -> None:
    # Figures are for people reading `sync status`: a Redis failure here must not fail a chunk.
    try:
        await RunStore(redis, url, run).add_figures(figures)
    except SyncStoreError as exc:
        logger.warning("run %s: request figures not recorded (%s)", run, exc)


def shared_limiter(url: str, target: SyncTarget, settings: WorkerSettings) -> RedisLimiter:
    """The Redis-backed limiter every worker of ``target`` shares."""
    return RedisLimiter(
        connect(url, max_connections=max(128, settings.concurrency * settings.jobs * 2)),
        url,
        target,
        max_concurrency=settings.max_concurrency,
        rate_limit=settings.rate_limit,
        lease_ttl=settings.lease_ttl,
    )
