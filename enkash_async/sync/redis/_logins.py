"""One password login at a time for every worker of a target, and one refusal for all.

EnKash locks an account after three refused logins, and each worker process has its own
client: four workers with a wrong password would spend four. So a worker logs in first
under a Redis lock (``enkash:login:{target}:lock``); a refusal is recorded
(``...:refused``: a salted scrypt fingerprint of the credentials, never the secret,
and EnKash's reason) and counted (``...:refusals``) for every worker to see, and no
worker sends those credentials again. Other credentials (a fixed password) may try.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from typing import Final

import redis.asyncio as aioredis

from enkash_async import EnkashClient, EnkashError, LoginError, PasswordCredentials
from enkash_async.sync._checkpoint import SyncTarget
from enkash_async.sync.redis._connection import redis_errors, target_tag, text

__all__ = ["LoginGate"]

logger = logging.getLogger("enkash_async.sync")

_LOCK_MS: Final = 60_000
_POLL: Final = 0.2


def _fingerprint(credentials: PasswordCredentials, salt: bytes) -> str:
    secret = "\0".join(
        (
            credentials.client_id,
            credentials.client_secret,
            credentials.username,
            credentials.password,
        )
    )
    # scrypt: a fingerprint in Redis must not make a weak password cheap to guess.
    return hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1, dklen=16).hex()


class LoginGate:
    """The login of every worker of ``target`` (password logins; a token needs none)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        url: str,
        target: SyncTarget,
        credentials: PasswordCredentials | None,
    ) -> None:
        self._redis = redis
        self._url = url
        self.target = target
        self.credentials = credentials
        prefix = f"enkash:login:{target_tag(target)}"
        self._lock, self._refused, self._count = (
            f"{prefix}:lock",
            f"{prefix}:refused",
            (f"{prefix}:refusals"),
        )

    async def check(self) -> None:
        """Raise ``LoginError`` when these credentials were refused already."""
        if self.credentials is None:
            return
        async with redis_errors(self._url, "reading the workers' login refusals"):
            refused = {
                text(k): text(v) for k, v in (await self._redis.hgetall(self._refused)).items()
            }
            count = int(await self._redis.get(self._count) or 0)
        if not refused:
            return
        salt = bytes.fromhex(refused.get("salt", ""))
        fingerprint = await asyncio.to_thread(_fingerprint, self.credentials, salt)
        if hmac.compare_digest(fingerprint, refused.get("fingerprint", "")):
            raise self._error(refused.get("reason", ""), count, earlier=True)

    async def first_login(self, client: EnkashClient) -> None:
        """Log ``client`` in under the shared lock, unless its credentials were refused.

        Raises ``LoginError`` (these credentials were refused, now or by another worker)
        or ``SyncStoreError``; any other failure is left to the calls that follow.
        """
        if self.credentials is None:
            return
        token = secrets.token_hex(8)
        async with redis_errors(self._url, "taking the workers' login lock"):
            while not await self._redis.set(self._lock, token, nx=True, px=_LOCK_MS):  # noqa: ASYNC110  # another process holds it
                await asyncio.sleep(_POLL)
        try:
            await self.check()
            try:
                await client.customers.search(page_size=1, max_items=1).first()
            except LoginError as exc:
                count = await self.refused(exc)
                raise self._error(exc.api_message or str(exc), count, earlier=False) from exc
            except EnkashError as exc:  # not a refusal: the calls that follow retry it
                logger.warning("first call after login failed: %s", exc)
            else:
                async with redis_errors(self._url, "clearing the workers' login refusals"):
                    await self._redis.delete(self._refused, self._count)
        finally:
            async with redis_errors(self._url, "releasing the workers' login lock"):
                if await self._redis.get(self._lock) == token.encode():
                    await self._redis.delete(self._lock)

    async def refused(self, exc: LoginError) -> int:
        """Record that EnKash refused these credentials; the refusals counted so far."""
        assert self.credentials is not None
        salt = secrets.token_bytes(16)
        fingerprint = await asyncio.to_thread(_fingerprint, self.credentials, salt)
        reason = (exc.api_message or "no reason given")[:200]
        async with redis_errors(self._url, "recording a refused login"):
            await self._redis.hset(
                self._refused,
                mapping={"salt": salt.hex(), "fingerprint": fingerprint, "reason": reason},
            )
            count = int(await self._redis.incr(self._count))
        return count

    def _error(self, reason: str, count: int, *, earlier: bool) -> LoginError:
        assert self.credentials is not None
        who = self.credentials.username
        when = "earlier, seen by another worker" if earlier else "now"
        return LoginError(
            f"EnKash refused the login of {who!r} at {self.target.base_url} {when} "
            f"({reason[:200] or 'no reason given'}); {count} refusal(s) counted by this "
            "target's workers, and EnKash locks the account after three. No worker sends "
            "these credentials again: fix ENKASH_PASSWORD (or the client id and secret) "
            "and start the workers again"
        )
