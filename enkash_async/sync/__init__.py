"""Customer sync: make every row of an ERP export exist in EnKash exactly once.

Sits on top of the client; the core client never imports it.
"""

from enkash_async.sync._checkpoint import CheckpointStore, RefState, SyncTarget

__all__ = ["CheckpointStore", "RefState", "SyncTarget"]
