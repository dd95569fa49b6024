"""The checkpoint seam of a sync: what is intended and what is done, per ``unique_ref_no``.

A checkpoint belongs to one :class:`SyncTarget` (an EnKash deployment and the identity
used on it) and one run id, so a trial run on the fake EnKash and a real run never share
state. Each backend (SQLite for one machine, Redis for many) is one implementation of
:class:`CheckpointStore`; the sync core knows only this Protocol.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from enkash_async.errors import EnkashError

__all__ = ["CheckpointError", "CheckpointStore", "RefState", "SyncTarget"]


class CheckpointError(EnkashError):
    """A checkpoint could not be read or written; ``store`` names it (a file, a Redis
    address), never a secret. A sync stops on it: nothing is sent that is not recorded."""

    def __init__(self, message: str, *, store: str) -> None:
        super().__init__(message)
        self.store = store


class RefState(str, enum.Enum):
    """What a checkpoint knows of one ``unique_ref_no``."""

    #: A create may have been sent; whether EnKash stored it is unknown until looked up.
    INTENDED = "intended"
    #: EnKash has this customer (created by this run, or found there).
    DONE = "done"


@attrs.frozen
class SyncTarget:
    """The EnKash a checkpoint belongs to: its base URL and who logs in there.

    ``principal`` is a user name or a fingerprint of a token, never a secret itself;
    build it with :meth:`for_token` or :meth:`for_user`.
    """

    base_url: str
    principal: str

    @classmethod
    def for_user(cls, base_url: str, username: str) -> SyncTarget:
        """The target of a password login as ``username``."""
        return cls(base_url.rstrip("/"), f"user:{username}")

    @classmethod
    def for_token(cls, base_url: str, token: str) -> SyncTarget:
        """The target of a static token, named by a fingerprint that cannot be reversed."""
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        return cls(base_url.rstrip("/"), f"token:{digest}")

    @property
    def key(self) -> str:
        """A stable, secret-free string naming this target (for file or key names)."""
        return f"{self.base_url}|{self.principal}"


class CheckpointStore(Protocol):
    """Intent and completion per ``unique_ref_no`` for one target and one run.

    Every method may raise an ``EnkashError`` subclass naming the store when it cannot
    be read or written; the sync then sends nothing it could not record.
    """

    async def states(self, refs: Sequence[str]) -> Mapping[str, RefState]:
        """The state of each of ``refs`` that the store knows; unknown refs are absent."""
        ...

    async def mark_intended(self, refs: Sequence[str]) -> None:
        """Record, durably and before any create is sent, that ``refs`` may be created."""
        ...

    async def mark_done(self, ref: str, customer_id: str | None) -> None:
        """Record that EnKash has the customer ``ref`` (with its id when known)."""
        ...

    async def aclose(self) -> None:
        """Release the store's connections or files."""
        ...
