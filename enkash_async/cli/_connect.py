"""How a command reaches EnKash: the connection flags every EnKash command shares, the
client they make, and the sync target (whose checkpoint state) that client stands for.

Settings come from flags first, then the ``ENKASH_*`` environment. Secrets are read from
the environment only. ``--fake`` starts an embedded fake EnKash instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import attrs

from enkash_async import EnkashClient, LoginError
from enkash_async._auth import static_token
from enkash_async.cli import _types as types
from enkash_async.cli._ui import CommandError
from enkash_async.sync import SyncTarget

__all__ = ["Connection", "add_connection_flags", "connect", "count_words", "login_advice"]

ENV_NAMES = (
    "ENKASH_BASE_URL",
    "ENKASH_TOKEN",
    "ENKASH_CLIENT_ID",
    "ENKASH_CLIENT_SECRET",
    "ENKASH_USERNAME",
    "ENKASH_PASSWORD",
)


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a command that talks to EnKash (``--base-url``, ``--fake``, ...)."""
    group = parser.add_argument_group(
        "connection",
        "EnKash is reached with ENKASH_BASE_URL and ENKASH_TOKEN, or ENKASH_CLIENT_ID, "
        "ENKASH_CLIENT_SECRET, ENKASH_USERNAME and ENKASH_PASSWORD (`enkash-async serve` "
        "prints these for its fake server); a flag wins over the environment",
    )
    group.add_argument(
        "--base-url", metavar="URL", help="EnKash's address (default: ENKASH_BASE_URL)"
    )
    group.add_argument(
        "--fake",
        action="store_true",
        help="run against an embedded fake EnKash instead (default: off)",
    )
    group.add_argument(
        "--fake-customers",
        type=types.count,
        default=1000,
        metavar="N",
        help="customers the embedded fake EnKash starts with, 0 or more (default: %(default)s)",
    )


@attrs.frozen
class Connection:
    """A connected client and the sync target it stands for (``fake``: an embedded
    server that goes away with the command, so nothing about it may be kept)."""

    client: EnkashClient
    target: SyncTarget
    fake: bool


@contextlib.asynccontextmanager
async def connect(args: argparse.Namespace, *, width: int = 100) -> AsyncIterator[Connection]:
    """The client ``args`` describe, allowed ``width`` requests at once (at least the
    client's default). Raises ``ValidationError`` naming each missing setting."""
    width = max(100, width)
    if args.fake:
        from enkash_async.testing import FakeEnkash

        async with (
            FakeEnkash(customers=args.fake_customers) as server,
            EnkashClient(
                server.url,
                credentials=server.credentials,
                max_concurrency=width,
                max_connections=width,
            ) as client,
        ):
            target = SyncTarget.for_user(f"fake+{server.url}", server.credentials.username)
            yield Connection(client, target, fake=True)
        return
    environ = {name: os.environ[name] for name in ENV_NAMES if os.environ.get(name)}
    if args.base_url:
        environ["ENKASH_BASE_URL"] = args.base_url
    async with EnkashClient.from_env(
        environ, max_concurrency=width, max_connections=width
    ) as client:
        base = environ["ENKASH_BASE_URL"]
        token = environ.get("ENKASH_TOKEN")
        if token:
            token = static_token(token)  # the target of the token sent, newline stripped
        target = (
            SyncTarget.for_token(base, token)
            if token
            else SyncTarget.for_user(base, environ["ENKASH_USERNAME"])
        )
        try:
            yield Connection(client, target, fake=False)
        except LoginError as exc:
            refusals = _refusals(target, add=1)
            raise CommandError(login_advice(exc, refusals), exit_code=1) from exc
        if client.stats.logins:
            _refusals(target, add=None)  # a login that worked starts the count again


def _state_file() -> Path:
    root = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(root) / "enkash-async" / "login-refusals.json"


def _refusals(target: SyncTarget, *, add: int | None) -> int:
    """Add to (or, with ``add=None``, clear) the refused logins counted for ``target``
    on this machine; returns the count. A state file that cannot be used counts 1."""
    path = _state_file()
    try:
        counts = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if not isinstance(counts, dict):
            counts = {}
        if add is None:
            if counts.pop(target.key, None) is None:
                return 0
            count = 0
        else:
            count = int(counts.get(target.key, 0)) + add
            counts[target.key] = count
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(counts), encoding="utf-8")
    except (OSError, ValueError, TypeError):
        return add or 0
    return count


def count_words(count: int, singular: str, plural: str | None = None) -> str:
    """``1 customer``, ``2 customers``: a count with its noun agreeing."""
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"


def login_advice(exc: LoginError, refusals: int) -> str:
    """What to tell the person whose login EnKash refused, ``refusals`` counted so far."""
    # EnKash's own reason is on the refusal the client wrapped, when there is one.
    reason = getattr(exc.__cause__, "api_message", None) or exc.api_message or "no reason given"
    left = 3 - refusals
    if left > 0:
        standing = f"{left} more and EnKash locks the account"
    else:
        standing = "EnKash may have locked the account: ask EnKash support to unlock it"
    return (
        f"EnKash refused the login ({reason}). This is refusal {refusals} seen from this "
        f"machine for this user; EnKash locks an account after 3 refused logins, so "
        f"{standing}. Check ENKASH_CLIENT_ID, ENKASH_CLIENT_SECRET, ENKASH_USERNAME and "
        "ENKASH_PASSWORD before trying again."
    )
