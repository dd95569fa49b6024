"""Customer sync: make every row of an ERP export exist in EnKash exactly once.

Sits on top of the client; the core client never imports it. :func:`sync_rows` is the one
code path every sync runs (the CLI import, the distributed workers); :func:`plan_rows` is
its dry run; :func:`read_file` reads CSV/JSONL sources; :class:`SqliteCheckpoint` is the
checkpoint of a sync on one machine.
"""

from enkash_async.sync._checkpoint import (
    CheckpointError,
    CheckpointStore,
    RefState,
    SyncTarget,
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

__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "KnownRefs",
    "Outcome",
    "RefState",
    "SourceError",
    "SourceRow",
    "SqliteCheckpoint",
    "SyncOutcome",
    "SyncSummary",
    "SyncTarget",
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
