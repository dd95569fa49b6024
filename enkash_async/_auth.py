"""Getting, caching and renewing EnKash access tokens.

A password login is sent once per renewal however many calls wait for it (they all
share its outcome, success or failure), and a login EnKash rejects is never sent
again by the same client: three failed logins lock the account.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from enkash_async._hooks import CallRecord, Observer
from enkash_async._reply import Reply
from enkash_async._retry import RetryPolicy, call_with_retries, failure_status
from enkash_async._transport import Timeouts, Transport, new_request_id
from enkash_async.auth import PasswordCredentials
from enkash_async.errors import (
    APIError,
    EnkashError,
    FieldError,
    LoginError,
    UnexpectedResponseError,
    ValidationError,
    excerpt,
)

__all__ = ["PasswordLogin", "StaticToken", "TokenProvider", "token_problem"]

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


_CHARACTER_NAMES = {"\r": "a carriage return", "\n": "a line feed", "\x00": "a NUL", " ": "a space"}


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot follow ``Bearer`` in a header, or None; the reason names the
    character and its position, never the token."""
    # RFC 6750 allows only visible ASCII in a bearer token; CR or LF would also split
    # the header (aiohttp raises a raw ValueError for them), so refuse before sending.
    if not token:
        return "is empty"
    for position, character in enumerate(token):
        if not "!" <= character <= "~":
            name = _CHARACTER_NAMES.get(character)
            if name is None:
                name = "a non-ASCII character" if ord(character) > 0x7F else "a control character"
            return f"holds {name} at position {position}; a bearer token is visible ASCII only"
    return None


def static_token(token: str) -> str:
    """``token`` as it will be sent: one trailing newline (``\n`` or ``\r\n``, as a
    secret mounted from a file usually ends) removed. Raises ``ValidationError``."""
    if token.endswith("\r\n"):
        token = token[:-2]
    elif token.endswith("\n"):
        token = token[:-1]
    problem = token_problem(token)
    if problem is not None:
        hint = " (one trailing newline is stripped, as a secret file has; not more)"
        raise ValidationError([FieldError("token", problem + hint)])
    return token


class StaticToken(TokenProvider):
    """A token the caller manages; a rejection is raised, never renewed.

    One trailing newline is stripped (a secret mounted from a file usually has one);
    any other character that cannot be sent in a header raises ``ValidationError``.
    """

    def __init__(self, token: str) -> None:
        self._token = static_token(token)

    async def token(self) -> str:
        return self._token


class PasswordLogin(TokenProvider):
    """Logs in with the password grant and renews ``refresh_margin`` seconds before expiry.

    Any login reply that is not an unambiguous success (HTTP 2xx, a token, no
    ``response_code``, ``errorResponse`` or OAuth ``error``) is a refusal and the
    credentials are never sent again, except a server failure (5xx, 408): that is
    raised, and a later call may log in again. A token lifetime (``expires_in``) that
    is missing, not a number or under 0.5 s is taken as 3600 s.
    """

    can_renew = True

    def __init__(
        self,
        credentials: PasswordCredentials,
        transport: Transport,
        *,
        retry: RetryPolicy,
        timeouts: Timeouts | None = None,
        refresh_margin: float = 60.0,
        clock: Any = time.monotonic,
        on_login: Callable[[], None] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._credentials = credentials
        self._observer = observer
        self._transport = transport
        self._retry = retry
        self._timeouts = timeouts or Timeouts()
        self._on_login = on_login
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
        # A login is a logical call of its own (``login``), inside the call it serves.
        record = None if self._observer is None else self._observer.begin("login", nested=True)
        if record is None:
            await self._login_once(None)
            return
        with record:
            await self._login_once(record)

    async def _login_once(self, record: CallRecord | None) -> None:
        creds = self._credentials
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        form = {
            "username": creds.username,
            "password": creds.password,
            "grant_type": "password",
            "clientId": creds.client_id,
        }
        request_id = new_request_id()
        policy = self._retry
        deadline_at = policy.call_deadline()

        async def attempt(deadline_at: float | None) -> Reply:
            send = self._transport.request(
                "POST",
                TOKEN_PATH,
                form=form,
                headers={"Authorization": f"Basic {basic}"},
                request_id=request_id,
                timeouts=self._timeouts.within(policy.time_left(deadline_at)),
            )
            reply = await send if record is None else await _observed(record, send, request_id)
            if reply.status in policy.unprocessed_statuses:
                reply.payload()  # raises the refusal-for-load, which is retried
            return reply

        self.logins += 1
        if self._on_login is not None:
            self._on_login()
        self._failure = None
        logger.debug("logging in to EnKash as %s", creds.username)
        # Only failures that surely never reached EnKash (or that it refused unprocessed)
        # are retried: a rejected login counts towards the account lock.
        try:
            reply = await call_with_retries(
                attempt,
                deadline_at,
                policy,
                idempotent=False,
                operation="login",
                observe=None if record is None else record.retrying,
                deadline_at=deadline_at,
            )
            token, expires_in = self._read_token(reply)
        except Exception as exc:
            self._failure = exc
            raise
        finally:
            self._finished += 1
        self._token = token
        # Renew ``refresh_margin`` early, but a short-lived token must still be reused.
        self._renew_at = self._clock() + expires_in - min(self._refresh_margin, expires_in / 2)
        logger.info("logged in to EnKash as %s; token valid for %ds", creds.username, expires_in)

    def _read_token(self, reply: Reply) -> tuple[str, float]:
        """The token and its lifetime from an unambiguous success; anything else is a
        refusal (recorded, so these credentials are never sent again) or, for a server
        failure (5xx, 408), that failure."""
        try:
            data = reply.json()
            success = 200 <= reply.status < 300
            if success and isinstance(data, dict) and not _has_token(data):
                data = reply.payload()  # the token inside EnKash's usual envelope
            if not success or not _is_success(data):
                reply.payload()  # raises what the reply says, if it says anything
                raise UnexpectedResponseError(
                    "login reply has no access_token/accessToken",
                    status=reply.status,
                    request_id=reply.request_id,
                )
        except EnkashError as exc:
            status = getattr(exc, "status", None)
            verdict = failure_status(exc) if isinstance(exc, APIError) else status
            if isinstance(verdict, int) and (verdict >= 500 or verdict == 408):
                raise  # EnKash failed: no verdict on the credentials
            reason = getattr(exc, "api_message", None) or exc.message
            self._rejected = LoginError(
                "EnKash did not accept the login; not retried, since three failed logins "
                f"lock the account ({excerpt(reason or 'no reason given', 200)})",
                status=status,
                error_type=getattr(exc, "error_type", None),
                request_id=getattr(exc, "request_id", None) or reply.request_id,
            )
            if isinstance(exc, UnexpectedResponseError) and exc.status in range(300, 400):
                raise  # a redirect: said as such (and, not being a success, never sent again)
            raise self._rejected from exc
        token = data.get("access_token") or data.get("accessToken")
        problem = token_problem(token)
        if problem is not None:
            # Not a usable success: logging in again would only get another such token.
            self._rejected = LoginError(
                f"EnKash's login reply has an access_token that cannot be sent: it {problem}",
                status=reply.status,
                request_id=reply.request_id,
            )
            raise self._rejected
        return token, _lifetime(data.get("expires_in", data.get("expiresIn")))


async def _observed(record: CallRecord, send: Awaitable[Reply], request_id: str) -> Reply:
    """``send`` awaited, told to the login's record (never the form or the header)."""
    started = record.sent("POST", TOKEN_PATH, request_id)
    status: int | None = None
    size = 0
    error: EnkashError | None = None
    try:
        reply = await send
        status, size = reply.status, len(reply.body)
        return reply
    except EnkashError as exc:
        error = exc
        raise
    finally:
        record.received(
            "POST", TOKEN_PATH, request_id, started, status=status, size=size, error=error
        )


# A token lifetime that is missing, unreadable or too short to use is taken as this;
# if the token dies sooner, EnKash's 401 renews it (once, shared by every caller).
DEFAULT_TOKEN_LIFETIME = 3600.0
# Below this a lifetime is unusable: every request would log in again.
MIN_TOKEN_LIFETIME = 0.5


def _lifetime(raw: Any) -> float:
    """Seconds a token lives: ``raw`` when it is a usable number, else the default."""
    if isinstance(raw, bool):
        return DEFAULT_TOKEN_LIFETIME
    try:
        seconds = float(raw)
    except (TypeError, ValueError, OverflowError):
        return DEFAULT_TOKEN_LIFETIME
    if not math.isfinite(seconds) or seconds < MIN_TOKEN_LIFETIME:
        return DEFAULT_TOKEN_LIFETIME
    return seconds


def _has_token(data: dict[str, Any]) -> bool:
    return "access_token" in data or "accessToken" in data


def _is_success(data: Any) -> bool:
    """Whether a 2xx login reply is an unambiguous success: a token, and no error."""
    if not isinstance(data, dict):
        return False
    token = data.get("access_token") or data.get("accessToken")
    if not isinstance(token, str) or not token:
        return False
    code = data.get("response_code")
    if code not in (None, 0, "0"):
        return False
    error = data.get("errorResponse")
    if error not in (None, {}) and not (
        isinstance(error, dict) and not error.get("errorType") and not error.get("errorMessage")
    ):
        return False
    return not data.get("error")
