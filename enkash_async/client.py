"""``EnkashClient``: the one place the customer resource, auth, retries, limits and the
transport meet.

One call runs through three layers, outermost first (as httpx's auth, retries and
send do): auth renewal (a rejected token is renewed and the call run once more),
retries (``_retry``'s policy, one attempt budget and one deadline for the whole call),
and one attempt (limiter slot, one request through the :class:`Transport`, the
envelope, then the caller's ``decode``).
"""

from __future__ import annotations

import logging
import os
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import aiohttp
import attrs

from enkash_async import _otel
from enkash_async._auth import PasswordLogin, StaticToken, TokenProvider
from enkash_async._customers import CUSTOMER_PATH, SEARCH_PATH, Customers
from enkash_async._fast import loads
from enkash_async._hooks import CallRecord, Observer
from enkash_async._limits import Limiter, RequestLimiter
from enkash_async._reply import Parse, Reply
from enkash_async._retry import AttemptBudget, RetryEvent, RetryPolicy, call_with_retries
from enkash_async._transport import (
    DEFAULT_MAX_REPLY_BYTES,
    USER_AGENT,
    AiohttpTransport,
    Timeouts,
    Transport,
    new_request_id,
)
from enkash_async._urls import check_base_url
from enkash_async.auth import PasswordCredentials
from enkash_async.errors import (
    AuthenticationError,
    EnkashError,
    FieldError,
    ValidationError,
)

__all__ = ["CUSTOMER_PATH", "SEARCH_PATH", "ClientStats", "Customers", "EnkashClient"]

T = TypeVar("T")

logger = logging.getLogger("enkash_async")

# Statuses that tell the limiter EnKash is overloaded.
_OVERLOAD_STATUSES = frozenset({429, 503})


@attrs.define
class ClientStats:
    """Counters of one client: HTTP ``requests`` sent (retries included), ``retries``,
    ``logins``, ``rate_limited`` (429 and 503 replies) and ``reconciled`` creates."""

    requests: int = 0
    retries: int = 0
    logins: int = 0
    rate_limited: int = 0
    reconciled: int = 0


class EnkashClient:
    """An asyncio client for EnKash's Customer APIs.

    Authenticate with a static ``token`` or with ``credentials`` (a password login,
    renewed before expiry and once on rejection); one trailing newline of a static
    token is stripped, as a secret read from a file has. Use as ``async with`` or call
    :meth:`aclose`. ``retry`` and ``timeouts`` apply to every call unless a call
    overrides them.

    Limits shared by every call of the client: at most ``max_concurrency`` requests in
    flight, at most ``rate_limit`` per second when set, and with ``adaptive_concurrency``
    the allowed concurrency halves on 429/503 and grows back by one per window of
    successes (AIMD), so a bulk job settles at what EnKash accepts.

    Plain ``http://`` is refused except to loopback unless ``allow_insecure_http`` is
    set; TLS certificates are verified unless ``ssl`` says otherwise.

    ``limiter`` replaces those per-client limits with any :class:`Limiter` (for example
    one budget shared by many processes through Redis); ``max_concurrency``,
    ``adaptive_concurrency`` and ``rate_limit`` are then ignored.

    Every reply is read with bounds: redirects are never followed (a 3xx is an
    ``UnexpectedResponseError`` naming its target host), and a reply body over
    ``max_reply_bytes`` (default 64 MiB, three times a 5000-customer page) is refused
    unread or cut off. ``transport`` replaces the aiohttp transport with any
    :class:`Transport` (tests pass a fake); ``session``, ``max_connections``, ``ssl``,
    ``user_agent`` and ``max_reply_bytes`` are then the transport's business.

    ``hooks`` is told of every logical call and HTTP request (see :class:`Hooks`: any
    object with some of its methods, or a list of them); with ``opentelemetry-api``
    installed and an SDK configured, spans and metrics go to the global providers (see
    :class:`OtelHooks`); set ``ENKASH_LOG=info|debug|body`` for log lines.
    ``trace_configs`` go to the aiohttp session the client makes.

    A client belongs to the event loop it is first used in; using it from another
    raises ``EnkashError``.

    Raises :class:`~enkash_async.errors.ValidationError` for a bad configuration.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        credentials: PasswordCredentials | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 100,
        allow_insecure_http: bool = False,
        ssl: ssl_module.SSLContext | bool = True,
        user_agent: str = USER_AGENT,
        max_concurrency: int = 100,
        adaptive_concurrency: bool = True,
        rate_limit: float | None = None,
        limiter: Limiter | None = None,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        transport: Transport | None = None,
        hooks: object | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        if max_concurrency < 1 or (rate_limit is not None and rate_limit <= 0):
            raise ValidationError(
                [FieldError("max_concurrency", "must be >= 1, and rate_limit > 0 when set")]
            )
        if not isinstance(max_reply_bytes, int) or max_reply_bytes < 1024:
            raise ValidationError(
                [FieldError("max_reply_bytes", "must be an integer of at least 1024")]
            )
        if (token is None) == (credentials is None):
            raise ValidationError(
                [FieldError("token", "pass exactly one of token= or credentials=")]
            )
        self.base_url = check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        self.retry = retry or RetryPolicy()
        self._stats = ClientStats()
        self._observer = Observer(
            hooks, _server_of(self.base_url), automatic=_otel.automatic(hooks)
        )
        self.limiter: Limiter = limiter or RequestLimiter(
            max_concurrency, adaptive=adaptive_concurrency, rate_limit=rate_limit
        )
        self.timeouts = timeouts or Timeouts()
        self._transport: Transport = transport or AiohttpTransport(
            self.base_url,
            session=session,
            max_connections=max_connections,
            ssl=ssl,
            user_agent=user_agent,
            max_reply_bytes=max_reply_bytes,
            trace_configs=trace_configs,
        )
        self._auth: TokenProvider
        if credentials is not None:
            self._auth = PasswordLogin(
                credentials,
                self._transport,
                retry=self.retry,
                timeouts=self.timeouts,
                on_login=self._count_login,
                observer=self._observer,
            )
        else:
            assert token is not None
            self._auth = StaticToken(token)
        self.customers = Customers(self)
        # Bound once: a bound method made per request is one more object the collector walks.
        self._one_attempt = self._attempt

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> EnkashClient:
        """A client configured from ``ENKASH_BASE_URL`` and either ``ENKASH_TOKEN`` or
        ``ENKASH_CLIENT_ID``/``ENKASH_CLIENT_SECRET``/``ENKASH_USERNAME``/``ENKASH_PASSWORD``.

        Other keyword arguments go to the constructor. Raises ``ValidationError`` naming
        each missing variable.
        """
        env = os.environ if environ is None else environ
        names = ("ENKASH_CLIENT_ID", "ENKASH_CLIENT_SECRET", "ENKASH_USERNAME", "ENKASH_PASSWORD")
        problems = []
        if not env.get("ENKASH_BASE_URL"):
            problems.append(FieldError("ENKASH_BASE_URL", "is not set"))
        token = env.get("ENKASH_TOKEN") or None
        credentials = None
        if token is None:
            missing = [name for name in names if not env.get(name)]
            problems += [FieldError(name, "is not set (nor is ENKASH_TOKEN)") for name in missing]
            if not missing:
                credentials = PasswordCredentials(*(env[name] for name in names))
        if problems:
            raise ValidationError(problems, model="environment")
        return cls(env["ENKASH_BASE_URL"], token=token, credentials=credentials, **kwargs)

    def __repr__(self) -> str:
        return f"EnkashClient(base_url={self.base_url!r}, auth={self._auth!r})"

    async def __aenter__(self) -> EnkashClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session this client made (a caller's own session is left open)."""
        await self._transport.aclose()

    async def _request(
        self,
        path: str,
        body: bytes | None,
        *,
        method: str = "POST",
        decode: Callable[[Any], T],
        operation: str,
        idempotent: bool,
        params: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        budget: AttemptBudget | None = None,
        deadline_at: float | None = None,
        parse: Parse = loads,
        request_id: str | None = None,
        template: str | None = None,
    ) -> T:
        """POST ``body`` to ``path`` with auth, limits and retries; return the envelope's
        payload passed through ``decode``.

        The internal entry point of every resource (``Customers``). ``budget`` bounds the
        requests sent (default: the policy's ``max_attempts``), shared with the caller's
        other calls when it passes one; ``deadline_at`` (on the policy's clock) ends the
        call (default: the policy's ``deadline`` from now); ``parse`` reads the body's
        JSON; ``request_id`` is the ``X-Request-Id`` every attempt sends (default: a new
        one); ``template`` the path with ids as ``{customerId}``, for hooks and spans. An
        ``UnexpectedResponseError`` from ``decode`` is given the reply's status and
        request id. Raises :class:`EnkashError` subclasses only.
        """
        if Observer.current() is None:
            record = self._observer.begin(operation)
            if record is not None:  # observed: the same call, inside its record
                with record:
                    return await self._request(
                        path,
                        body,
                        method=method,
                        decode=decode,
                        operation=operation,
                        idempotent=idempotent,
                        params=params,
                        retry=retry,
                        budget=budget,
                        deadline_at=deadline_at,
                        parse=parse,
                        request_id=request_id,
                        template=template,
                    )
        policy = retry or self.retry
        call = _Call(
            method=method,
            path=path,
            body=body,
            params=params,
            request_id=request_id or new_request_id(),
            template=template,
            budget=budget or AttemptBudget(policy.max_attempts),
            deadline_at=policy.call_deadline() if deadline_at is None else deadline_at,
            policy=policy,
            parse=parse,
            decode=decode,
            operation=operation,
            idempotent=idempotent,
        )
        # Auth renewal around retries around one attempt, with no closure per call: this
        # runs once per request, and every object it saves is one the collector skips.
        auth = self._auth
        call.token = await auth.token()
        try:
            return await self._retrying(call)
        except AuthenticationError:
            if not auth.can_renew:
                raise
            auth.invalidate(call.token)
            logger.info("%s: EnKash rejected the token; logging in again", operation)
        call.token = await auth.token()
        return await self._retrying(call)

    def _retrying(self, call: _Call[T]) -> Awaitable[T]:
        """The retries layer around one attempt."""
        return call_with_retries(
            self._one_attempt,
            call,
            call.policy,
            idempotent=call.idempotent,
            operation=call.operation,
            observe=self._count_retry,
            budget=call.budget,
            deadline_at=call.deadline_at,
        )

    async def _attempt(self, call: _Call[T]) -> T:
        """One request within the limiter: its reply's payload, decoded, or its error."""
        left = call.policy.time_left(call.deadline_at)
        async with self.limiter.slot() as slot:
            call.budget.used += 1
            self._stats.requests += 1
            record = Observer.current()  # None unless hooks or logging look
            if record is None:  # the common case, inline: one call fewer per request
                reply = await self._transport.request(
                    call.method,
                    call.path,
                    body=call.body,
                    params=call.params,
                    headers={"Authorization": "Bearer " + call.token},
                    request_id=call.request_id,
                    timeouts=self.timeouts.within(left),
                )
            else:
                reply = await self._send_observed(call, left, record)
            if reply.status in _OVERLOAD_STATUSES:
                slot.overloaded()
                self._stats.rate_limited += 1
            else:
                slot.succeeded()
        return reply.decode(call.decode, call.parse)

    def _send(self, call: _Call[Any], left: float | None) -> Awaitable[Reply]:
        return self._transport.request(
            call.method,
            call.path,
            body=call.body,
            params=call.params,
            headers={"Authorization": "Bearer " + call.token},
            request_id=call.request_id,
            timeouts=self.timeouts.within(left),
        )

    async def _send_observed(
        self, call: _Call[Any], left: float | None, record: CallRecord
    ) -> Reply:
        """:meth:`_send`, told to the call's record (cancellation included)."""
        method, path, request_id, template = call.method, call.path, call.request_id, call.template
        started = record.sent(method, path, request_id, template)
        status: int | None = None
        size = 0
        error: EnkashError | None = None
        try:
            reply = await self._send(call, left)
            status, size = reply.status, len(reply.body)
            return reply
        except EnkashError as exc:
            error = exc
            raise
        finally:  # also when cancelled: then neither a status nor an error
            record.received(
                method,
                path,
                request_id,
                started,
                status=status,
                size=size,
                error=error,
                template=template,
            )

    @property
    def stats(self) -> ClientStats:
        """This client's counters so far."""
        return self._stats

    def _count_retry(self, event: RetryEvent) -> None:
        self._stats.retries += 1
        record = Observer.current()
        if record is not None:
            record.retrying(event)

    def _count_login(self) -> None:
        self._stats.logins += 1

    def _note_reconciled(self) -> None:
        self._stats.reconciled += 1


@attrs.define
class _Call(Generic[T]):
    """What every attempt of one call shares (``token``: the one it sends, renewed once
    when EnKash rejects it)."""

    method: str
    path: str
    body: bytes | None
    params: Mapping[str, str] | None
    request_id: str
    budget: AttemptBudget
    deadline_at: float | None
    policy: RetryPolicy
    parse: Parse
    decode: Callable[[Any], T]
    operation: str
    idempotent: bool
    template: str | None = None
    token: str = attrs.field(default="", repr=False)


def _server_of(base_url: str) -> tuple[str, int | None]:
    """The host and port of ``base_url`` (the port its scheme implies when none is given)."""
    parts = urlsplit(base_url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.hostname or "", port
