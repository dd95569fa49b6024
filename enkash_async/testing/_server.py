"""FakeEnkash: an in-process stand-in for EnKash's Customer APIs (like stripe-mock or moto).

The server itself: lifecycle, tokens, fault injection, rate limits and the middleware.
What each route answers is in :mod:`._routes`; what a fault makes of a reply, in
:mod:`._faults`.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.typedefs import Handler

from enkash_async._fast import paused_gc
from enkash_async.auth import PasswordCredentials
from enkash_async.errors import FieldError, UsageError, ValidationError

from ._data import IdFactory, synthesize
from ._faults import ROUTES, WRITE_ROUTES, Fault, Injection, Route, make_injection, shape
from ._reply import REQUEST_ID, Reply, error, respond, token_invalid
from ._routes import ACTIVATE_ROUTE, CUSTOMER_ROUTE, DEACTIVATE_ROUTE, RouteHandlers, TokenStyle
from ._stats import ServerStats
from ._store import Record, Store
from ._validate import DEFAULT_LIMIT

#: The largest request body a :class:`FakeEnkash` reads by default (aiohttp's default;
#: EnKash's own limit is not documented).
MAX_BODY: Final = 1024**2

__all__ = [
    "DEFAULT_CREDENTIALS",
    "MAX_BODY",
    "FakeEnkash",
    "ServerStats",
    "TokenStyle",
    "inject_fault_mix",
    "print_connection_info",
    "serve",
]

#: The credentials a :class:`FakeEnkash` accepts unless told otherwise (fake, by design).
DEFAULT_CREDENTIALS: Final = PasswordCredentials(
    client_id="fake-enkash-client",
    client_secret="fake-enkash-client-secret",
    username="api.user@fake-enkash.test",
    password="fake-enkash-password",
)

# Handlers finish at once; a short grace keeps close() quick even with a fault sleeping.
_SHUTDOWN_TIMEOUT: Final = 0.5


class FakeEnkash(RouteHandlers):
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
    logins lock a username (None: never). ``strict`` (the default) rejects body fields
    the schema does not have; ``strict=False`` ignores them, as a Spring server that
    does not fail on unknown properties would. ``default_limit`` is the page size when a
    search gives no ``limit``. ``fault_seed`` seeds the fault draws of :meth:`inject`
    (default: ``seed``), so one set of customers can be rehearsed against other faults.
    A request body over ``max_body`` bytes is answered 413 with EnKash's envelope.
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
        fault_seed: int | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        if customers < 0:
            raise ValidationError(
                [FieldError("customers", f"customers must not be negative; got {customers!r}")]
            )
        if token_style not in ("old", "new"):
            raise ValidationError(
                [
                    FieldError(
                        "token_style", f"token_style must be 'old' or 'new'; got {token_style!r}"
                    )
                ]
            )
        latency = dict(latency or {})
        unknown = set(latency) - set(ROUTES)
        if unknown:
            raise ValidationError(
                [
                    FieldError(
                        "latency", f"latency routes must be among {ROUTES}; got {sorted(unknown)}"
                    )
                ]
            )
        if any(delay < 0 for delay in latency.values()):
            raise ValidationError([FieldError("latency", "latency must not be negative")])
        if max_in_flight is not None and max_in_flight < 1:
            raise ValidationError(
                [
                    FieldError(
                        "max_in_flight", f"max_in_flight must be at least 1; got {max_in_flight!r}"
                    )
                ]
            )
        if rate_limit is not None and rate_limit <= 0:
            raise ValidationError(
                [FieldError("rate_limit", f"rate_limit must be positive; got {rate_limit!r}")]
            )
        if not 1 <= default_limit <= 5000:
            raise ValidationError(
                [
                    FieldError(
                        "default_limit", f"default_limit must be in 1..5000; got {default_limit!r}"
                    )
                ]
            )
        if max_body < 1:
            raise ValidationError(
                [FieldError("max_body", f"max_body must be at least 1; got {max_body!r}")]
            )
        self._seed = seed
        self._fault_seed = seed if fault_seed is None else fault_seed
        self._max_body = max_body
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

        self._app = web.Application(middlewares=[self._middleware], client_max_size=max_body)
        self._app.router.add_post("/oauth/token", self._serve, name="token")
        self._app.router.add_post("/api/v0/customer", self._serve, name="create")
        self._app.router.add_post("/api/v0/customer/search", self._serve, name="search")
        self._app.router.add_put(ACTIVATE_ROUTE, self._serve, name="activate")
        self._app.router.add_put(DEACTIVATE_ROUTE, self._serve, name="deactivate")
        self._app.router.add_patch(CUSTOMER_ROUTE, self._serve, name="update")
        self._app.router.add_delete(CUSTOMER_ROUTE, self._serve, name="delete")
        self._app.router.add_get("/_fake/stats", self._stats_page, name="fake_stats")
        self._runner: web.AppRunner | None = None
        self._closed = False
        self._url: str | None = None
        self._token: str | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on ``host``:``port`` (a free port if 0) and issue :attr:`token`."""
        if self._runner is not None or self._closed:
            raise UsageError("a FakeEnkash starts once")
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
            raise UsageError("the FakeEnkash is not started")
        return self._url

    @property
    def credentials(self) -> PasswordCredentials:
        """Credentials that log in successfully."""
        return self._credentials

    @property
    def token(self) -> str:
        """A bearer token issued at start, valid for ``token_ttl`` seconds."""
        if self._token is None:
            raise UsageError("the FakeEnkash is not started")
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
        drawn from a RNG seeded by ``fault_seed`` and the injection's ordinal, so the
        same requests in the same order get the same faults. Both: at chance ``p`` until
        it has fired N times. Neither: every request until :meth:`clear_faults`.
        Rules are tried in injection order; at most one fault fires per request.
        """
        self._injected += 1
        rng = random.Random(f"enkash-fake-faults:{self._fault_seed}:{self._injected}")
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
        REQUEST_ID.set(request_id)
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
                response = respond(
                    error(429, "UNKNOWN_ERROR", "Too Many Requests", headers={"Retry-After": "1"})
                )
            elif exception is not None:
                response = respond(self._no_route(request, exception))
            else:
                try:
                    response = await handler(request)
                except web.HTTPRequestEntityTooLarge:
                    # aiohttp's own reply is plain text; EnKash answers with its envelope.
                    response = respond(self._too_large(request))
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

    def _too_large(self, request: web.Request) -> Reply:
        message = f"Request body of {request.method} {request.path} exceeds {self._max_body} bytes"
        return error(413, "CLIENT_REQUEST_ERROR", message)

    @staticmethod
    def _no_route(request: web.Request, exception: web.HTTPException) -> Reply:
        where = f"{request.method} {request.path}"
        if isinstance(exception, web.HTTPMethodNotAllowed):
            allow = {"Allow": ", ".join(sorted(exception.allowed_methods))}
            message = f"Method not allowed: {where}"
            return error(405, "CLIENT_REQUEST_ERROR", message, headers=allow)
        return error(404, "RECORD_NOT_FOUND", f"No such endpoint: {where}")

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        route = cast(Route, request.match_info.route.name)
        delay = self._latency.get(route, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if route != "token" and not self._token_valid(request):
            return respond(token_invalid())
        fault = self._pick_fault(route)
        if fault is None:
            return respond(await self._answer(route, request, commit=True))
        self.stats.faults_injected[fault.kind] += 1
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay)
            return respond(await self._answer(route, request, commit=True))
        if fault.kind == "after_commit":
            reply = await self._answer(route, request, commit=True)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.then is None:
                return respond(reply)
            return await shape(request, fault.then, reply)
        base = None
        if fault.kind in ("disconnect", "truncated"):
            # Cut what the route would have said, without its side effects.
            base = await self._answer(route, request, commit=False)
        return await shape(request, fault, base)


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
    fault_seed: int | None = None,
    strict: bool = True,
    ready: Callable[[FakeEnkash], None] | None = None,
) -> None:
    """Run a :class:`FakeEnkash` until SIGINT or SIGTERM (or until cancelled).

    ``fault_rate`` injects :func:`inject_fault_mix` at that total rate, its draws seeded
    by ``fault_seed`` (default ``seed``). ``strict=False`` ignores unknown body fields.
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
        strict=strict,
        fault_seed=fault_seed,
    ) as server:
        if fault_rate:
            inject_fault_mix(server, fault_rate)
        with _stop_on_signals() as stop:
            # After the handlers: whoever reads the ready line may signal at once.
            if ready is not None:
                ready(server)
            await stop.wait()


def print_connection_info(server: FakeEnkash) -> None:
    """Print the server's :meth:`~FakeEnkash.connection_info` as one JSON line on stdout,
    and flush, so a script or benchmark reading the line can connect."""
    sys.stdout.write(json.dumps(server.connection_info()) + "\n")
    sys.stdout.flush()


def inject_fault_mix(server: FakeEnkash, rate: float) -> list[Injection]:
    """Make about ``rate`` of the requests on every route fail, in equal shares of a fifth:
    503 (with ``Retry-After``), 500, a dropped connection, and, on the routes that write
    (create, update, activate, deactivate, delete), a 500 or a lost reply after the
    change was applied. The login gets the 503 only: a 500 or a dropped login is
    ambiguous, and counts towards the account lock on EnKash, so a client does not
    retry it and a rehearsal would stop at the login. The injections, in the order
    they are tried."""
    if not 0.0 < rate <= 1.0:
        raise ValidationError([FieldError("rate", f"rate must be in (0, 1]; got {rate!r}")])
    share = rate / 5
    writes = tuple(route for route in ROUTES if route in WRITE_ROUTES)
    reads_and_writes = tuple(route for route in ROUTES if route != "token")
    kinds: list[tuple[Fault, tuple[Route, ...]]] = [
        (Fault.after_commit(status=500), writes),
        (Fault.after_commit(disconnect=True), writes),
        (Fault.status(503, retry_after=0.05), ROUTES),
        (Fault.status(500), reads_and_writes),
        (Fault.drop(), reads_and_writes),
    ]
    # Each rule sees only requests the earlier rules let through: scale to keep shares equal.
    injections = []
    left = 1.0
    for fault, routes in kinds:
        # Rounded, so that at a rate of 1 the last rule fires on every request it sees.
        rate_here = min(1.0, round(share / left, 9))
        injections.append(server.inject(fault, route=routes, rate=rate_here))
        left -= share
    return injections


@contextmanager
def _stop_on_signals() -> Iterator[asyncio.Event]:
    """An event that SIGINT and SIGTERM set while in the block."""
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
        yield stop
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
