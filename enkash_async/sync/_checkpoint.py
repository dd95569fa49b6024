"""The checkpoint seam of a sync: what is intended and what is done, per ``unique_ref_no``.

A checkpoint belongs to one :class:`SyncTarget` (an EnKash deployment and the identity
used on it) and one run id, so a trial run on the fake EnKash and a real run never share
state. Each backend (SQLite for one machine, Redis for many) is one implementation of
:class:`CheckpointStore`; the sync core knows only this Protocol.

An intent is owned: by one store (a run in one process, named by :func:`owner_id`) under
a lease the store renews while it is open and gives up on close. A ref another live
owner intends is ``HELD``: the caller waits, never sends it. A dead owner's intent (its
lease ran out: the process died) is taken over as ``RECLAIMED``: looked up before any
create, since the dead owner may have sent it.
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final, Protocol

import attrs

from enkash_async._urls import has_userinfo, redact_url
from enkash_async.errors import EnkashError, FieldError, ValidationError

__all__ = [
    "DEACTIVATED",
    "LEASE_ENVIRONMENT",
    "CheckpointError",
    "CheckpointStore",
    "Claim",
    "RefState",
    "SyncTarget",
    "Written",
    "lease_seconds",
    "owner_id",
    "unknown_state",
]

#: Seconds an owner's intents stay its own without a renewal (renewed every third of it).
LEASE_SECONDS = 30.0
#: The environment variable that overrides :data:`LEASE_SECONDS` for stores given no
#: ``lease``: shorter makes a rerun after a crash take over sooner (tests set it), but it
#: must outlast a stall of the process (a pause longer than it lets another run send).
LEASE_ENVIRONMENT = "ENKASH_SYNC_LEASE_SECONDS"


def lease_seconds() -> float:
    """The lease a store uses when given none: ``$ENKASH_SYNC_LEASE_SECONDS`` or 30.

    The one place the variable is read; a value that is not a positive number raises
    :class:`~enkash_async.errors.ValidationError` naming it.
    """
    text = os.environ.get(LEASE_ENVIRONMENT)
    if text is None or not text.strip():
        return LEASE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        problem = f"must be a positive number of seconds, got {text!r}"
        raise ValidationError([FieldError(LEASE_ENVIRONMENT, problem)])
    return value


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


class Claim(str, enum.Enum):
    """What :meth:`CheckpointStore.claim` made of one ref."""

    #: This store holds the intent, and no one intended the ref before: create it.
    NEW = "new"
    #: This store holds the intent now, but an earlier or dead owner (or this store, on an
    #: earlier pass) may have sent it: look it up by ``uniqueRefNo`` before any create.
    RECLAIMED = "reclaimed"
    #: Another live owner holds the intent: send nothing, ask again later.
    HELD = "held"
    #: EnKash has the customer (the checkpoint recorded it as done).
    DONE = "done"


#: The fingerprint the sync records for a customer it deactivated because the file no
#: longer listed it (a row fingerprint is hex, so it never equals this).
DEACTIVATED: Final = "deactivated"


@attrs.frozen
class Written:
    """What a checkpoint recorded of a done ref: the customer's id in EnKash when known,
    and the ``fingerprint`` of the row last written there (None: unknown, as in a
    checkpoint an older version wrote; the next sync compares the row with EnKash)."""

    customer_id: str | None
    fingerprint: str | None = None


def owner_id(run: str) -> str:
    """A name for an intent owner: the run, this host and process, and a random part (two
    stores in one process are two owners)."""
    return f"{run}/{socket.gethostname()}:{os.getpid()}/{secrets.token_hex(4)}"


def unknown_state(ref: str, state: object, *, store: str) -> CheckpointError:
    """The error for a checkpoint row in a state this version does not know."""
    shown = repr(state)[:40]
    return CheckpointError(
        f"the checkpoint {store} holds {ref!r} in state {shown}, which this version of "
        "enkash-async does not know (written by a newer version, or edited): upgrade, or "
        "use another checkpoint",
        store=store,
    )


@attrs.frozen
class SyncTarget:
    """The EnKash a checkpoint belongs to: its base URL and who logs in there.

    ``principal`` is a user name or a fingerprint of a token, never a secret itself;
    build it with :meth:`for_token` or :meth:`for_user`.
    """

    base_url: str = attrs.field()
    principal: str

    @base_url.validator
    def _no_userinfo(self, _: object, value: str) -> None:
        # The target is written to checkpoints, Redis and logs: it must hold no secret.
        if has_userinfo(value):
            raise ValidationError(
                [
                    FieldError(
                        "base_url",
                        f"must not carry a user name or password ({redact_url(value)}): "
                        "give credentials through ENKASH_* instead",
                    )
                ]
            )

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

    async def claim(self, refs: Sequence[str]) -> Mapping[str, Claim]:
        """Take the intent of each of ``refs`` no live owner holds, durably and before any
        create is sent; what became of each (see :class:`Claim`)."""
        ...

    async def mark_intended(self, refs: Sequence[str]) -> None:
        """Record, durably, that this store intends ``refs`` (a done ref stays done)."""
        ...

    async def mark_done(
        self, ref: str, customer_id: str | None, fingerprint: str | None = None
    ) -> None:
        """Record that EnKash has the customer ``ref`` (with its id when known) as the row
        whose ``fingerprint`` is given (None: unknown), replacing what was recorded."""
        ...

    async def written(self, refs: Sequence[str]) -> Mapping[str, Written]:
        """What is recorded of each done ref of ``refs`` (completions not yet committed
        included); others are absent. Only reads: takes no intent, writes nothing."""
        ...

    def iter_written(self) -> AsyncIterator[tuple[str, Written]]:
        """Every done ref of this target and run with what is recorded of it, streamed
        (for ``deactivate_missing``); the order is the store's."""
        ...

    async def aclose(self) -> None:
        """Give up this store's intents (a later run looks them up) and release its
        connections or files."""
        ...
