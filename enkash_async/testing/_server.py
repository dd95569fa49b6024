"""FakeEnkash: an in-process stand-in for EnKash's Customer APIs (like stripe-mock or moto)."""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import random
import secrets
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Literal, cast

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler

from enkash_async._fast import paused_gc
from enkash_async.auth import PasswordCredentials

from ._data import API_USER, BANKS, IdFactory, iso_utc, synthesize
from ._envelope import (
    SUCCESS_MESSAGE,
    TOKEN_INVALID_CODE,
    TOKEN_INVALID_MESSAGE,
    ErrorType,
    SubError,
    error_body,
    html_page,
    success_body,
)
from ._faults import ROUTES, Fault, Injection, Route, make_injection, retry_after_header
from ._store import Record, Store
from ._validate import DEFAULT_LIMIT, validate_create, validate_filter, validate_paging

__all__ = [
    "DEFAULT_CREDENTIALS",
    "FakeEnkash",
    "ServerStats",
    "TokenStyle",
    "inject_fault_mix",
    "serve",
]

TokenStyle = Literal["old", "new"]

#: The credentials a :class:`FakeEnkash` accepts unless told otherwise (fake, by design).
DEFAULT_CREDENTIALS: Final = PasswordCredentials(
    client_id="fake-enkash-client",
    client_secret="fake-enkash-client-secret",
    username="api.user@fake-enkash.test",
    password="fake-enkash-password",
)

# Handlers finish at once; a short grace keeps close() quick even with a fault sleeping.
_SHUTDOWN_TIMEOUT: Final = 0.5
_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("enkash_fake_request_id")
_PAGE_HEAD: Final = b'{"errorResponse":null,"payload":{"data":['
_PAGE_TAIL: Final = (
    b',"response_code":0,"response_message":' + json.dumps(SUCCESS_MESSAGE).encode() + b"}"
)


@attrs.define
class ServerStats:
    """What a :class:`FakeEnkash` has seen, for assertions in tests."""

    #: Requests per route: ``token``, ``create``, ``search``, and ``other`` (unknown paths).
    requests: Counter[str] = attrs.Factory(Counter)
    #: Successful logins.
    logins: int = 0
    #: Refused logins (bad credentials, bad Basic header, wrong grant type, locked account).
    failed_logins: int = 0
    #: Faults that fired, per kind (``status``, ``disconnect``, ``after_commit``, ...).
    faults_injected: Counter[str] = attrs.Factory(Counter)
    #: Requests refused with 429: more than ``max_in_flight`` in flight, or over ``rate_limit``.
    rate_limited: int = 0
    #: Of those, the ones refused for going over ``rate_limit``.
    over_rate: int = 0
    #: Customers stored through ``POST /api/v0/customer`` (after-commit faults included).
    created: int = 0
    #: Requests being handled right now, and the most there ever were at once.
    in_flight: int = 0
    peak_in_flight: int = 0
    #: ``time.monotonic()`` of the first and the latest customer stored (0.0: none yet).
    first_created_at: float = 0.0
    last_created_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """These counters as a JSON-ready dict (what ``GET /_fake/stats`` serves)."""
        return {
            "requests": dict(self.requests),
            "logins": self.logins,
            "failed_logins": self.failed_logins,
            "faults_injected": dict(self.faults_injected),
            "rate_limited": self.rate_limited,
            "over_rate": self.over_rate,
            "created": self.created,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "first_created_at": self.first_created_at,
            "last_created_at": self.last_created_at,
        }

    def reset(self) -> None:
        """Zero every counter (``in_flight`` keeps counting what is still running)."""
        in_flight = self.in_flight
        self.__init__()  # type: ignore[misc]
        self.in_flight = in_flight


@attrs.frozen
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = attrs.Factory(dict)


def _request_id() -> str:
    return _REQUEST_ID.get("")


def _error(
    status: int,
    error_type: ErrorType | str,
    message: str,
    *,
    response_code: int | None = None,
    response_message: str | None = None,
    sub_errors: Sequence[SubError] = (),
    headers: Mapping[str, str] | None = None,
) -> _Reply:
    body = error_body(
        error_type=error_type,
        message=message,
        request_id=_request_id(),
        response_code=status if response_code is None else response_code,
        response_message=response_message,
        sub_errors=sub_errors,
    )
    return _Reply(status, body, headers=headers or {})


def _token_invalid() -> _Reply:
    return _error(401, "UNAUTHORIZED", TOKEN_INVALID_MESSAGE, response_code=TOKEN_INVALID_CODE)


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(client id, client secret) from a ``Basic`` Authorization header, or None."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError:  # bad base64 (binascii.Error) or bad UTF-8
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _BadBody(Exception):
    """The request body is not the JSON the route needs."""


async def _json_body(request: web.Request) -> Any:
    """The parsed body, None for an empty one; raises _BadBody for anything else."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise _BadBody(f"Malformed JSON request: {exc}") from None


def _bad_body(message: str) -> _Reply:
    return _error(400, "CLIENT_REQUEST_ERROR", message)


def _invalid(problems: Sequence[SubError]) -> _Reply:
    fields = ", ".join(dict.fromkeys(problem.field for problem in problems))
    return _error(400, "VALIDATION_ERROR", f"Validation failed for: {fields}", sub_errors=problems)


class FakeEnkash:
    """An EnKash Customer API on 127.0.0.1, for tests and benchmarks.

    Serves ``POST /oauth/token`` (password grant), ``POST /api/v0/customer`` and
    ``POST /api/v0/customer/search`` with EnKash's envelope, validation and paging,
    over ``customers`` synthetic customers made deterministically from ``seed``, and
    injects faults on demand (:meth:`inject`)::

        async with FakeEnkash(customers=10_000, seed=7) as server:
            ...  # talk to server.url with server.credentials or server.token

    ``token_style`` picks the login reply's keys: "old" ``access_token``/``expires_in``,
    "new" ``accessToken``/``expiresIn``. ``latency`` adds a delay per route;
    ``max_in_flight`` answers 429 (``Retry-After: 1``) to requests beyond that many at
    once; ``rate_limit`` answers 429 to create and search requests beyond that many per
    second (a token bucket holding ``rate_burst`` requests, default a tenth of a
    second's worth), as a hidden server-side cap would. ``lockout_after`` failed
    logins lock a username (None: never). ``strict`` rejects body fields the schema
    does not have. ``default_limit`` is the page size when a search gives no ``limit``.
    """

    def __init__(
        self,
        *,
        customers: int = 0,
        seed: int = 0,
        token_ttl: float = 3600.0,
        host: str = "127.0.0.1",
        port: int = 0,
        token_style: TokenStyle = "old",
        latency: Mapping[str, float] | None = None,
        max_in_flight: int | None = None,
        rate_limit: float | None = None,
        rate_burst: float | None = None,
        lockout_after: int | None = 3,
        strict: bool = True,
        default_limit: int = DEFAULT_LIMIT,
        credentials: PasswordCredentials = DEFAULT_CREDENTIALS,
    ) -> None:
        if customers < 0:
            raise ValueError(f"customers must not be negative; got {customers!r}")
        if token_style not in ("old", "new"):
            raise ValueError(f"token_style must be 'old' or 'new'; got {token_style!r}")
        latency = dict(latency or {})
        unknown = set(latency) - set(ROUTES)
        if unknown:
            raise ValueError(f"latency routes must be among {ROUTES}; got {sorted(unknown)}")
        if any(delay < 0 for delay in latency.values()):
            raise ValueError("latency must not be negative")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1; got {max_in_flight!r}")
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError(f"rate_limit must be positive; got {rate_limit!r}")
        if not 1 <= default_limit <= 5000:
            raise ValueError(f"default_limit must be in 1..5000; got {default_limit!r}")
        self._seed = seed
        self._token_ttl = token_ttl
        self._host = host
        self._port = port
        self._token_style = token_style
        self._latency = latency
        self._max_in_flight = max_in_flight
        self._rate_limit = rate_limit
        self._rate_burst = (
            max(1.0, rate_limit / 10 if rate_burst is None else rate_burst) if rate_limit else 0.0
        )
        self._rate_tokens = self._rate_burst
        self._rate_checked = time.monotonic()
        self._lockout_after = lockout_after
        self._strict = strict
        self._default_limit = default_limit
        self._credentials = credentials

        self.stats = ServerStats()
        self._ids = IdFactory(seed)
        self._store = Store()
        self._created: list[Record] = []
        self._tokens: dict[str, float] = {}
        self._failures: Counter[str] = Counter()
        self._injections: list[Injection] = []
        self._injected = 0
        if customers:
            with paused_gc():
                self._store.add(synthesize(customers, seed, self._ids))

        self._app = web.Application(middlewares=[self._middleware])
        self._app.router.add_post("/oauth/token", self._serve, name="token")
        self._app.router.add_post("/api/v0/customer", self._serve, name="create")
        self._app.router.add_post("/api/v0/customer/search", self._serve, name="search")
        self._app.router.add_get("/_fake/stats", self._stats_page, name="fake_stats")
        self._runner: web.AppRunner | None = None
        self._closed = False
        self._url: str | None = None
        self._token: str | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host``:``port`` (a free port if 0) and issue :attr:`token`."""
        if self._runner is not None or self._closed:
            raise RuntimeError("a FakeEnkash starts once")
        runner = web.AppRunner(
            self._app, handle_signals=False, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._token = self.issue_token()

    async def close(self) -> None:
        """Stop listening and drop open connections (safe to call twice)."""
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeEnkash:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # ---- what tests read -----------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The aiohttp application (for ``aiohttp.test_utils.TestServer`` and the like)."""
        return self._app

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (once started)."""
        if self._url is None:
            raise RuntimeError("the FakeEnkash is not started")
        return self._url

    @property
    def credentials(self) -> PasswordCredentials:
        """Credentials that log in successfully."""
        return self._credentials

    @property
    def token(self) -> str:
        """A bearer token issued at start, valid for ``token_ttl`` seconds."""
        if self._token is None:
            raise RuntimeError("the FakeEnkash is not started")
        return self._token

    @property
    def seed(self) -> int:
        """The seed of the synthetic customers, identifiers and fault draws."""
        return self._seed

    @property
    def customers(self) -> list[dict[str, Any]]:
        """Every stored customer as a ``CustomerResponse`` wire dict, by ``id`` (read-only)."""
        return [record.wire for record in self._store.records]

    @property
    def created_customers(self) -> list[dict[str, Any]]:
        """The customers stored through the API, in order (read-only)."""
        return [record.wire for record in self._created]

    @property
    def stored_count(self) -> int:
        """How many customers are stored, synthetic ones included."""
        return len(self._store)

    def find_by_unique_ref(self, unique_ref_no: str) -> list[dict[str, Any]]:
        """Every stored customer with this ``uniqueRefNo`` (duplicates are allowed)."""
        return [record.wire for record in self._store.by_unique_ref(unique_ref_no)]

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The stored customer with this ``customerId``, if any."""
        record = self._store.by_customer_id(customer_id)
        return None if record is None else record.wire

    def connection_info(self) -> dict[str, str]:
        """``url``, ``client_id``, ``client_secret``, ``username``, ``password``, ``token``."""
        return {
            "url": self.url,
            "client_id": self._credentials.client_id,
            "client_secret": self._credentials.client_secret,
            "username": self._credentials.username,
            "password": self._credentials.password,
            "token": self.token,
        }

    # ---- tokens and accounts -------------------------------------------------------

    def issue_token(self, ttl: float | None = None) -> str:
        """A new bearer token, valid for ``ttl`` seconds (default ``token_ttl``)."""
        token = secrets.token_urlsafe(32)
        self._tokens[token] = time.monotonic() + (self._token_ttl if ttl is None else ttl)
        return token

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far (:attr:`token` included)."""
        self._tokens.clear()

    def is_locked(self, username: str) -> bool:
        """True if ``username`` has failed too many logins."""
        limit = self._lockout_after
        return limit is not None and self._failures[username] >= limit

    def unlock(self, username: str | None = None) -> None:
        """Forget failed logins of ``username`` (of everyone if None)."""
        if username is None:
            self._failures.clear()
        else:
            self._failures.pop(username, None)

    def _token_valid(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        expiry = self._tokens.get(token)
        if expiry is None:
            return False
        if time.monotonic() >= expiry:
            del self._tokens[token]
            return False
        return True

    # ---- faults ---------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        route: Route | Collection[Route] | None = None,
        rate: float | None = None,
        times: int | None = None,
    ) -> Injection:
        """Make requests on ``route`` (one, several, or None for all) suffer ``fault``.

        ``times=N``: the next N requests. ``rate=p``: each request with chance ``p``,
        drawn from a RNG seeded by the server seed and the injection's ordinal, so the
        same requests in the same order get the same faults. Both: at chance ``p`` until
        it has fired N times. Neither: every request until :meth:`clear_faults`.
        Rules are tried in injection order; at most one fault fires per request.
        """
        self._injected += 1
        rng = random.Random(f"enkash-fake-faults:{self._seed}:{self._injected}")
        injection = make_injection(fault, route, rate, times, rng)
        self._injections.append(injection)
        return injection

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._injections.clear()

    @property
    def injections(self) -> tuple[Injection, ...]:
        """The injected faults that can still fire."""
        return tuple(self._injections)

    def _pick_fault(self, route: Route) -> Fault | None:
        for injection in self._injections:
            if injection.fires(route):
                if injection.exhausted:
                    self._injections.remove(injection)
                return injection.fault
        return None

    # ---- request handling ---------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        _REQUEST_ID.set(request_id)
        stats = self.stats
        stats.requests[request.match_info.route.name or "other"] += 1
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        response: web.StreamResponse
        try:
            exception = request.match_info.http_exception
            over_rate = self._over_rate(request)
            if over_rate or (
                self._max_in_flight is not None and stats.in_flight > self._max_in_flight
            ):
                stats.rate_limited += 1
                stats.over_rate += over_rate
                response = self._respond(
                    _error(429, "UNKNOWN_ERROR", "Too Many Requests", headers={"Retry-After": "1"})
                )
            elif exception is not None:
                response = self._respond(self._no_route(request, exception))
            else:
                response = await handler(request)
        finally:
            stats.in_flight -= 1
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id
        return response

    def _over_rate(self, request: web.Request) -> bool:
        """Whether this request goes over ``rate_limit`` (token bucket; takes a token if not)."""
        if self._rate_limit is None or request.match_info.route.name not in ("create", "search"):
            return False
        now = time.monotonic()
        elapsed, self._rate_checked = now - self._rate_checked, now
        self._rate_tokens = min(self._rate_burst, self._rate_tokens + elapsed * self._rate_limit)
        if self._rate_tokens < 1.0:
            return True
        self._rate_tokens -= 1.0
        return False

    async def _stats_page(self, request: web.Request) -> web.Response:
        """``GET /_fake/stats``: the counters, and the stored customers' duplicate refs, as
        JSON; for a test that runs the fake as a process of its own."""
        refs = Counter(record.wire.get("uniqueRefNo") for record in self._store.records)
        refs.pop(None, None)
        body = {
            **self.stats.as_json(),
            "stored": len(self._store),
            "unique_refs": len(refs),
            "duplicate_refs": sum(1 for count in refs.values() if count > 1),
        }
        return web.json_response(body)

    @staticmethod
    def _no_route(request: web.Request, exception: web.HTTPException) -> _Reply:
        where = f"{request.method} {request.path}"
        if isinstance(exception, web.HTTPMethodNotAllowed):
            allow = {"Allow": ", ".join(sorted(exception.allowed_methods))}
            message = f"Method not allowed: {where}"
            return _error(405, "CLIENT_REQUEST_ERROR", message, headers=allow)
        return _error(404, "RECORD_NOT_FOUND", f"No such endpoint: {where}")

    @staticmethod
    def _respond(reply: _Reply) -> web.Response:
        return web.Response(
            status=reply.status,
            body=reply.body,
            content_type=reply.content_type,
            headers=reply.headers,
        )

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        route = cast(Route, request.match_info.route.name)
        delay = self._latency.get(route, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if route != "token" and not self._token_valid(request):
            return self._respond(_token_invalid())
        fault = self._pick_fault(route)
        if fault is None:
            return self._respond(await self._answer(route, request, commit=True))
        self.stats.faults_injected[fault.kind] += 1
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay)
            return self._respond(await self._answer(route, request, commit=True))
        if fault.kind == "after_commit":
            reply = await self._answer(route, request, commit=True)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.then is None:
                return self._respond(reply)
            return await self._shape(request, fault.then, reply)
        base = None
        if fault.kind in ("disconnect", "truncated"):
            # Cut what the route would have said, without its side effects.
            base = await self._answer(route, request, commit=False)
        return await self._shape(request, fault, base)

    async def _shape(
        self, request: web.Request, fault: Fault, base: _Reply | None
    ) -> web.StreamResponse:
        """The reply ``fault`` makes of ``base`` (the route's own reply, where needed)."""
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = retry_after_header(fault.retry_after)
        kind = fault.kind
        if kind == "status":
            return self._respond(
                _error(fault.http_status, fault.error_type, fault.message, headers=headers)
            )
        if kind == "html":
            page = html_page(fault.http_status)
            return self._respond(_Reply(fault.http_status, page, "text/html", headers))
        if kind in ("envelope_error", "token_invalid"):
            error = _error(200, fault.error_type, fault.message, response_code=fault.response_code)
            return self._respond(error)
        if kind == "drop":
            if request.transport is not None:
                request.transport.close()
            # Writing this fails on the closed transport; aiohttp treats that as a hang-up.
            return web.Response(status=500)
        if base is None:  # pragma: no cover - every other kind is handled above
            raise AssertionError(f"fault {kind!r} needs a reply to cut")
        cut = min(len(base.body) - 1, int(len(base.body) * fault.cut))
        if kind == "truncated":
            return self._respond(_Reply(200, base.body[: max(cut, 0)], base.content_type))
        response = web.StreamResponse(status=base.status, headers=base.headers)
        response.content_type = base.content_type
        response.content_length = len(base.body)
        response.headers["X-Request-Id"] = _request_id()
        await response.prepare(request)
        await response.write(base.body[: max(cut, 0)])
        if request.transport is not None:
            request.transport.close()
        return response

    async def _answer(self, route: Route, request: web.Request, *, commit: bool) -> _Reply:
        try:
            if route == "token":
                return await self._login(request, commit=commit)
            if route == "create":
                return await self._create(request, commit=commit)
            return await self._search(request)
        except _BadBody as exc:
            return _bad_body(str(exc))

    # ---- POST /oauth/token ---------------------------------------------------------

    async def _login(self, request: web.Request, *, commit: bool) -> _Reply:
        form = await request.post()

        def field(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        username = field("username")
        problem, counts = self._login_problem(
            request.headers.get("Authorization", ""),
            client_id=field("clientId"),
            grant_type=field("grant_type"),
            username=username,
            password=field("password"),
        )
        if problem is not None:
            if commit:
                self.stats.failed_logins += 1
                if counts:
                    self._failures[username] += 1
            return _error(401, "UNAUTHORIZED", problem)
        token = secrets.token_urlsafe(32)
        if commit:
            self._tokens[token] = time.monotonic() + self._token_ttl
            self._failures.pop(username, None)
            self.stats.logins += 1
        expires_in = int(self._token_ttl)
        if self._token_style == "old":
            payload: dict[str, Any] = {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": expires_in,
            }
        else:
            payload = {"accessToken": token, "tokenType": "bearer", "expiresIn": expires_in}
        return _Reply(200, json.dumps(payload).encode())

    def _login_problem(
        self, authorization: str, *, client_id: str, grant_type: str, username: str, password: str
    ) -> tuple[str | None, bool]:
        """Why the login fails (None if it does not), and whether it counts to a lockout."""
        expected = self._credentials
        basic = _basic_credentials(authorization)
        if basic is None:
            return "Full authentication is required: send Basic client credentials", False
        if basic != (expected.client_id, expected.client_secret):
            return "Bad client credentials", False
        if client_id != expected.client_id:
            return "clientId is missing or does not match the Basic credentials", False
        if grant_type != "password":
            return f"Unsupported grant type: {grant_type!r}", False
        if self.is_locked(username):
            return "User account is locked", False
        if (username, password) != (expected.username, expected.password):
            return "Bad credentials", True
        return None, False

    # ---- POST /api/v0/customer -----------------------------------------------------

    async def _create(self, request: web.Request, *, commit: bool) -> _Reply:
        body = await _json_body(request)
        if body is None:
            return _bad_body("Required request body is missing")
        if not isinstance(body, dict):
            return _bad_body("The request body must be a JSON object")
        problems = validate_create(body, strict=self._strict)
        if problems:
            return _invalid(problems)
        wire = self._new_customer(body)
        if commit:
            self._store.add([wire])
            self._created.append(self._store.records[-1])
            self.stats.created += 1
            self.stats.last_created_at = time.monotonic()
            if not self.stats.first_created_at:
                self.stats.first_created_at = self.stats.last_created_at
        return _Reply(200, success_body(wire))

    def _new_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The ``CustomerResponse`` EnKash makes of a valid ``CustomerCreate``."""
        now = iso_utc(time.time())
        customer_id = self._ids.customer_id()
        user, user_name = API_USER
        contacts = [
            {
                "createdBy": user,
                "createdOn": now,
                "customerId": customer_id,
                "customerName": contact["legalName"],
                "deleted": "true" if contact["deleted"] else "false",
                "email": contact.get("email"),
                "keyContactPersonId": contact.get("keyContactPersonId")
                or self._ids.key_contact_id(),
                "mail_enabled": contact.get("mail_enabled") is True,
                "mobile": contact["mobile"],
                "modifiedBy": user,
                "modifiedOn": now,
                "name": contact["name"],
                "sms_enabled": contact.get("sms_enabled") is True,
                "whatsapp_enabled": contact.get("whatsapp_enabled") is True,
            }
            for contact in body["customerKeyContacts"]
        ]
        reminders = [
            {
                "customerId": customer_id,
                "customerReminderId": reminder.get("customerReminderId") or self._ids.reminder_id(),
                "dueDateDifference": reminder.get("dueDateDifference"),
                "reminderInterval": reminder.get("reminderInterval"),
                # LocalTime "HH:mm:ss" comes back as "HH:mm".
                "reminderTime": (reminder.get("reminderTime") or "")[:5] or None,
                "reminderType": reminder.get("reminderType"),
                "stage": reminder.get("stage"),
            }
            for reminder in body.get("customerReminders") or ()
        ]
        ifsc = body.get("ifsc")
        emails = [c["email"] for c in contacts if c["deleted"] == "false" and c["email"]]
        return {
            "accountNumber": body.get("accountNumber"),
            "active": True,
            "address": body.get("address"),
            "assignedAgent": None,
            "bankName": BANKS.get(ifsc[:4].upper()) if ifsc else None,
            "branchCodes": [],
            "companyId": body.get("companyId"),
            "contactEmail": emails[0] if emails else None,
            "contactNumber": body.get("contactNumber"),
            "createdBy": user,
            "createdByName": user_name,
            "createdOn": now,
            "customerId": customer_id,
            "customerKeyContacts": contacts,
            "customerLogo": None,
            "customerReminders": reminders,
            "dsoMedian": 0,
            "id": self._store.next_id,
            "ifsc": ifsc,
            "legalName": body["legalName"],
            "modifiedBy": user,
            "modifiedByName": user_name,
            "modifiedOn": now,
            "netAmount": 0.0,
            "panOrGstin": body.get("panOrGstin"),
            "parentCompanyId": None,
            "parentLegalName": None,
            "pinCode": body.get("pinCode"),
            "state": body.get("state"),
            "uniqueRefNo": body.get("uniqueRefNo"),
            "warnings": [],
        }

    # ---- POST /api/v0/customer/search ----------------------------------------------

    async def _search(self, request: web.Request) -> _Reply:
        paging, problems = validate_paging(request.query, default_limit=self._default_limit)
        body = await _json_body(request)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            return _bad_body("The request body must be a JSON object")
        problems.extend(validate_filter(body, strict=self._strict))
        if problems:
            return _invalid(problems)
        page, total = self._store.search(body, paging)
        data = b",".join([record.body for record in page])
        count = f'],"recordsCount":{total}}}'.encode()
        return _Reply(200, b"".join((_PAGE_HEAD, data, count, _PAGE_TAIL)))


async def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    customers: int = 0,
    seed: int = 0,
    *,
    token_ttl: float = 3600.0,
    token_style: TokenStyle = "old",
    latency: Mapping[str, float] | None = None,
    max_in_flight: int | None = None,
    rate_limit: float | None = None,
    fault_rate: float = 0.0,
    ready: Callable[[FakeEnkash], None] | None = None,
) -> None:
    """Run a :class:`FakeEnkash` until SIGINT or SIGTERM (or until cancelled).

    ``fault_rate`` injects :func:`inject_fault_mix` at that total rate.
    ``ready`` is called once the server listens, e.g. to print its connection details.
    """
    async with FakeEnkash(
        customers=customers,
        seed=seed,
        token_ttl=token_ttl,
        host=host,
        port=port,
        token_style=token_style,
        latency=latency,
        max_in_flight=max_in_flight,
        rate_limit=rate_limit,
    ) as server:
        if fault_rate:
            inject_fault_mix(server, fault_rate)
        if ready is not None:
            ready(server)
        await _until_signalled()


def inject_fault_mix(server: FakeEnkash, rate: float) -> list[Injection]:
    """Make about ``rate`` of create and search requests fail, in equal shares: 503,
    500, a dropped connection, and (creates only) a 500 or a lost reply after the
    customer was stored; the injections, in the order they are tried."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1]; got {rate!r}")
    share = rate / 5
    kinds: list[tuple[Fault, tuple[Route, ...]]] = [
        (Fault.after_commit(status=500), ("create",)),
        (Fault.after_commit(disconnect=True), ("create",)),
        (Fault.status(503, retry_after=0.05), ("create", "search")),
        (Fault.status(500), ("create", "search")),
        (Fault.drop(), ("create", "search")),
    ]
    # Each rule sees only requests the earlier rules let through: scale to keep shares equal.
    injections = []
    left = 1.0
    for fault, routes in kinds:
        injections.append(server.inject(fault, route=routes, rate=min(1.0, share / left)))
        left -= share
    return injections


async def _until_signalled() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or Windows: wait for cancellation instead
        installed.append(signum)
    try:
        await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
