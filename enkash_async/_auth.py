"""Getting, caching and renewing EnKash access tokens.

A password login is sent once per renewal however many calls wait for it (they all
share its outcome, success or failure), and a login EnKash rejects is never sent
again by the same client: three failed logins lock the account.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

from enkash_async._retry import RetryPolicy, call_with_retries
from enkash_async._transport import Transport, new_request_id, raise_for_envelope
from enkash_async.auth import PasswordCredentials
from enkash_async.errors import (
    AuthenticationError,
    BadRequestError,
    LoginError,
    PermissionDeniedError,
    UnexpectedResponseError,
)

__all__ = ["PasswordLogin", "StaticToken", "TokenProvider"]

logger = logging.getLogger("enkash_async")

TOKEN_PATH = "/oauth/token"


class TokenProvider:
    """Where a client's bearer token comes from."""

    can_renew = False
    logins = 0  # logins sent so far

    async def token(self) -> str:
        """The token to send now."""
        raise NotImplementedError

    def invalidate(self, token: str) -> None:
        """Forget ``token`` after EnKash rejected it, so the next call renews it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StaticToken(TokenProvider):
    """A token the caller manages; a rejection is raised, never renewed."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token


class PasswordLogin(TokenProvider):
    """Logs in with the password grant and renews ``refresh_margin`` seconds before expiry."""

    can_renew = True

    def __init__(
        self,
        credentials: PasswordCredentials,
        transport: Transport,
        *,
        retry: RetryPolicy,
        refresh_margin: float = 60.0,
        clock: Any = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._transport = transport
        self._retry = retry
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock: asyncio.Lock | None = None
        self.logins = 0
        # Logins finished, and the failure of the latest: shared with the calls that
        # waited for it.
        self._finished = 0
        self._failure: BaseException | None = None
        # A login EnKash refused: this client never sends those credentials again.
        self._rejected: LoginError | None = None

    def __repr__(self) -> str:
        creds = self._credentials
        return f"PasswordLogin(client_id={creds.client_id!r}, username={creds.username!r})"

    async def token(self) -> str:
        if self._valid():
            assert self._token is not None
            return self._token
        self._raise_if_rejected()
        if self._lock is None:
            self._lock = asyncio.Lock()
        finished_before = self._finished
        async with self._lock:
            self._raise_if_rejected()
            if not self._valid():  # another caller may have logged in while this one waited
                if self._finished != finished_before and self._failure is not None:
                    # The login this call waited for failed: share its failure rather than
                    # send another at once (a hundred waiting calls must not mean a hundred
                    # logins).
                    raise self._failure
                await self._login()
            assert self._token is not None
            return self._token

    def _raise_if_rejected(self) -> None:
        rejected = self._rejected
        if rejected is None:
            return
        # A new exception each time: re-raising one object would grow its traceback.
        raise LoginError(
            "EnKash rejected this client's login earlier; not logging in again, since three "
            "failed logins lock the account. Fix the credentials and make a new client "
            f"({rejected.api_message or 'no reason given'})",
            status=rejected.status,
            error_type=rejected.error_type,
            request_id=rejected.request_id,
        ) from rejected

    def invalidate(self, token: str) -> None:
        if token == self._token:
            self._token = None

    def _valid(self) -> bool:
        return self._token is not None and self._clock() < self._renew_at

    async def _login(self) -> None:
        creds = self._credentials
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        form = {
            "username": creds.username,
            "password": creds.password,
            "grant_type": "password",
            "clientId": creds.client_id,
        }
        request_id = new_request_id()

        async def attempt() -> tuple[int, Any]:
            status, headers, data = await self._transport.post(
                TOKEN_PATH,
                form=form,
                headers={"Authorization": f"Basic {basic}"},
                request_id=request_id,
            )
            if status >= 300 or not _has_token(data):
                # An error (EnKash refuses logins with HTTP 200 too), or the usual envelope.
                data = raise_for_envelope(status, headers, data, request_id)
            return status, data

        self.logins += 1
        self._failure = None
        logger.debug("logging in to EnKash as %s", creds.username)
        # Only failures that surely never reached EnKash (or that it refused unprocessed)
        # are retried: a rejected login counts towards the account lock.
        try:
            try:
                status, data = await call_with_retries(
                    attempt, self._retry, idempotent=False, operation="POST /oauth/token"
                )
            except (AuthenticationError, BadRequestError, PermissionDeniedError) as exc:
                self._rejected = LoginError(
                    "EnKash rejected the login; not retried, since three failed logins lock "
                    f"the account ({exc.api_message or 'no reason given'})",
                    status=exc.status,
                    error_type=exc.error_type,
                    request_id=exc.request_id,
                )
                raise self._rejected from exc
            token, expires_in = _read_token(status, data, request_id)
        except Exception as exc:
            self._failure = exc
            raise
        finally:
            self._finished += 1
        self._token = token
        # Renew ``refresh_margin`` early, but a short-lived token must still be reused.
        self._renew_at = self._clock() + expires_in - min(self._refresh_margin, expires_in / 2)
        logger.info("logged in to EnKash as %s; token valid for %ds", creds.username, expires_in)


def _has_token(data: Any) -> bool:
    return isinstance(data, dict) and ("access_token" in data or "accessToken" in data)


def _read_token(status: int, data: Any, request_id: str) -> tuple[str, float]:
    if not isinstance(data, dict):
        raise UnexpectedResponseError(
            "login reply is not a JSON object", status=status, request_id=request_id
        )
    token = data.get("access_token") or data.get("accessToken")
    if not isinstance(token, str) or not token:
        raise UnexpectedResponseError(
            "login reply has no access_token/accessToken", status=status, request_id=request_id
        )
    raw_expiry = data.get("expires_in", data.get("expiresIn"))
    try:
        expires_in = float(raw_expiry) if raw_expiry is not None else 3600.0
    except (TypeError, ValueError):
        expires_in = 3600.0  # an odd expiry must not waste a good token; 401 renews it
    return token, expires_in
