"""Customer sync: make every row of an ERP export exist in EnKash exactly once.

Sits on top of the client; the core client never imports it. :func:`sync_rows` is the one
code path every sync runs (the CLI import, the distributed workers); :func:`plan_rows` is
its dry run; :func:`read_file` reads CSV/JSONL sources; :class:`SqliteCheckpoint` is the
checkpoint of a sync on one machine.

The distributed names (:class:`RedisLimiter`, :class:`RedisCheckpoint` and their errors)
load on first use and need the ``sync`` extra (``pip install 'enkash-async[sync]'``).
"""

import importlib
from typing import TYPE_CHECKING, Any

from enkash_async.sync._checkpoint import (
    CheckpointError,
    CheckpointStore,
    Claim,
    RefState,
    SyncTarget,
    Written,
)
from enkash_async.sync._core import (
    KnownRefs,
    Outcome,
    SyncOutcome,
    SyncSummary,
    find_by_ref,
    plan_rows,
    sync_rows,
)
from enkash_async.sync._sources import (
    SourceError,
    SourceRow,
    check_source,
    count_rows,
    flatten,
    iter_rows,
    read_csv,
    read_file,
    read_jsonl,
    wire_path,
)
from enkash_async.sync._sqlite import SqliteCheckpoint

if TYPE_CHECKING:
    from enkash_async.sync.redis import (
        BudgetUnavailableError,
        EvictionPolicyError,
        RedisCheckpoint,
        RedisLimiter,
        StateLostError,
        SyncStoreError,
    )

# Loaded on first use from the Redis backends' package, so that the local sync works
# without redis-py installed.
_REDIS_NAMES = frozenset(
    {
        "BudgetUnavailableError",
        "EvictionPolicyError",
        "RedisCheckpoint",
        "RedisLimiter",
        "StateLostError",
        "SyncStoreError",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _REDIS_NAMES:
        raise AttributeError(f"module 'enkash_async.sync' has no attribute {name!r}")
    try:
        return getattr(importlib.import_module("enkash_async.sync.redis"), name)
    except ImportError as exc:
        raise ImportError(
            f"enkash_async.sync.{name} needs the sync extra: pip install 'enkash-async[sync]'"
        ) from exc


__all__ = [
    "BudgetUnavailableError",
    "CheckpointError",
    "CheckpointStore",
    "Claim",
    "EvictionPolicyError",
    "KnownRefs",
    "Outcome",
    "RedisCheckpoint",
    "RedisLimiter",
    "RefState",
    "SourceError",
    "SourceRow",
    "SqliteCheckpoint",
    "StateLostError",
    "SyncOutcome",
    "SyncStoreError",
    "SyncSummary",
    "SyncTarget",
    "Written",
    "check_source",
    "count_rows",
    "find_by_ref",
    "flatten",
    "iter_rows",
    "plan_rows",
    "read_csv",
    "read_file",
    "read_jsonl",
    "sync_rows",
    "wire_path",
]
