"""``EnkashClient``: the one place models, the wire converter and the transport meet."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl as ssl_module
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Mapping
from typing import Any

import aiohttp
import attrs

from enkash_async import _convert
from enkash_async._auth import PasswordLogin, StaticToken, TokenProvider
from enkash_async._bulk import run_bounded
from enkash_async._fast import dumps
from enkash_async._limits import Limiter, RequestLimiter
from enkash_async._pagination import DEFAULT_PREFETCH, MAX_PAGE_SIZE, SearchIterator
from enkash_async._retry import RetryEvent, RetryPolicy, call_with_retries, failure_status
from enkash_async._transport import (
    USER_AGENT,
    Timeouts,
    Transport,
    check_base_url,
    new_request_id,
    raise_for_envelope,
)
from enkash_async.auth import PasswordCredentials
from enkash_async.errors import (
    AmbiguousCreateError,
    APIError,
    AuthenticationError,
    ConnectError,
    EnkashError,
    FieldError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from enkash_async.models import (
    CreateResult,
    Customer,
    CustomerCreate,
    CustomerSearch,
    SortDirection,
)

__all__ = ["ClientStats", "Customers", "EnkashClient"]

logger = logging.getLogger("enkash_async")

CUSTOMER_PATH = "/api/v0/customer"
SEARCH_PATH = "/api/v0/customer/search"

_ORDER_FIELDS: dict[str, str] = {
    **{a.name: _convert.wire_name(a.name) for a in attrs.fields(Customer)},
    **{_convert.wire_name(a.name): _convert.wire_name(a.name) for a in attrs.fields(Customer)},
}


# How many customers one reconciliation lookup by unique_ref_no reads.
_LOOKUP_PAGE = 20

# The least time an attempt is given, even when the deadline is (nearly) spent.
_MIN_ATTEMPT = 0.05

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


@attrs.define
class _Tally:
    """The HTTP attempts one logical call made."""

    attempts: int = 0


class EnkashClient:
    """An asyncio client for EnKash's Customer APIs.

    Authenticate with a static ``token`` or with ``credentials`` (a password login,
    renewed before expiry and once on rejection). Use as ``async with`` or call
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
    ) -> None:
        if max_concurrency < 1 or (rate_limit is not None and rate_limit <= 0):
            raise ValidationError(
                [FieldError("max_concurrency", "must be >= 1, and rate_limit > 0 when set")]
            )
        if (token is None) == (credentials is None):
            raise ValidationError(
                [FieldError("token", "pass exactly one of token= or credentials=")]
            )
        self.base_url = check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        self.retry = retry or RetryPolicy()
        self._stats = ClientStats()
        self.limiter: Limiter = limiter or RequestLimiter(
            max_concurrency, adaptive=adaptive_concurrency, rate_limit=rate_limit
        )
        self._transport = Transport(
            self.base_url,
            session=session,
            timeouts=timeouts or Timeouts(),
            max_connections=max_connections,
            ssl=ssl,
            user_agent=user_agent,
        )
        self._auth: TokenProvider
        if credentials is not None:
            self._auth = PasswordLogin(credentials, self._transport, retry=self.retry)
        else:
            assert token is not None
            self._auth = StaticToken(token)
        self.customers = Customers(self)

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

    async def _send(
        self,
        path: str,
        body: bytes,
        *,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
        retry: RetryPolicy | None,
        operation: str,
        decode: Callable[[Any], Any] | None = None,
        tally: _Tally | None = None,
    ) -> Any:
        """POST ``body`` with auth and retries; return the envelope's payload, passed
        through ``decode`` when given (its ``UnexpectedResponseError`` then names the
        reply's status and request id)."""
        policy = retry or self.retry
        request_id = new_request_id()
        deadline_at = None if policy.deadline is None else policy.clock() + policy.deadline
        for renewed in (False, True):
            token = await self._auth.token()
            headers = {"Authorization": f"Bearer {token}"}

            async def attempt(headers: dict[str, str] = headers) -> Any:
                async with self.limiter.slot() as slot:
                    self._stats.requests += 1
                    if tally is not None:
                        tally.attempts += 1
                    status, reply_headers, data = await self._transport.post(
                        path,
                        body=body,
                        params=params,
                        headers=headers,
                        request_id=request_id,
                        timeouts=self._attempt_timeouts(deadline_at, policy),
                    )
                    if status in _OVERLOAD_STATUSES:
                        slot.overloaded()
                        self._stats.rate_limited += 1
                    else:
                        slot.succeeded()
                payload = raise_for_envelope(status, reply_headers, data, request_id)
                if decode is None:
                    return payload
                try:
                    return decode(payload)
                except UnexpectedResponseError as exc:
                    if exc.request_id is not None:
                        raise
                    raise UnexpectedResponseError(
                        exc.message, status=status, request_id=request_id
                    ) from exc

            try:
                return await call_with_retries(
                    attempt,
                    policy,
                    idempotent=idempotent,
                    operation=operation,
                    observe=self._count_retry,
                )
            except AuthenticationError:
                if renewed or not self._auth.can_renew:
                    raise
                self._auth.invalidate(token)
                logger.info("%s: EnKash rejected the token; logging in again", operation)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt_timeouts(self, deadline_at: float | None, policy: RetryPolicy) -> Timeouts | None:
        """The attempt's timeouts, cut so that it cannot run past the call's deadline."""
        timeouts = self._transport.timeouts
        if deadline_at is None:
            return None
        left = max(deadline_at - policy.clock(), _MIN_ATTEMPT)
        if left >= timeouts.attempt:
            return None
        return Timeouts(connect=min(timeouts.connect, left), attempt=left)

    @property
    def stats(self) -> ClientStats:
        """This client's counters so far."""
        self._stats.logins = self._auth.logins
        return self._stats

    def _count_retry(self, event: RetryEvent) -> None:
        self._stats.retries += 1


class Customers:
    """``client.customers``: create and search EnKash customers."""

    def __init__(self, client: EnkashClient) -> None:
        self._client = client

    async def create(
        self, customer: CustomerCreate, *, retry: RetryPolicy | None = None
    ) -> Customer:
        """Create ``customer`` and return it as EnKash stored it.

        A create is resent at once only when it surely did not reach EnKash or was
        refused unprocessed (429, 503). When it fails after it may have reached EnKash
        (a timeout after sending, 500, 502, 504, a lost reply), a customer with a
        ``unique_ref_no`` is looked up by it: found, it is returned; not found, the
        create is sent again. Without ``unique_ref_no`` that case raises
        ``AmbiguousCreateError`` and nothing is resent.

        Raises ``ValidationError`` before sending anything invalid, ``APIError``
        subclasses for EnKash's refusals, ``TransportError``, ``UnexpectedResponseError``
        and ``AmbiguousCreateError``.
        """
        return (await self._create(customer, retry, _Tally()))[0]

    async def _create(
        self, customer: CustomerCreate, retry: RetryPolicy | None, tally: _Tally
    ) -> tuple[Customer, bool]:
        """The created (or found) customer, and whether it was found by reconciliation."""
        if not isinstance(customer, CustomerCreate):
            raise ValidationError(
                [
                    FieldError(
                        "customer",
                        f"must be a CustomerCreate, got {type(customer).__name__} "
                        "(build one with CustomerCreate(...) or CustomerCreate.from_dict(...))",
                    )
                ]
            )
        policy = retry or self._client.retry
        body = dumps(_convert.to_wire(customer))
        ref = customer.unique_ref_no
        for round_ in range(1, policy.max_attempts + 1):
            try:
                created: Customer = await self._client._send(
                    CUSTOMER_PATH,
                    body,
                    idempotent=False,
                    retry=retry,
                    operation="create customer",
                    decode=_created_customer,
                    tally=tally,
                )
                return created, False
            except EnkashError as exc:
                if not _is_ambiguous(exc):
                    raise
                if ref is None:
                    raise AmbiguousCreateError(
                        f"create failed after the request may have reached EnKash ({exc}); "
                        "the customer may or may not exist. Give every CustomerCreate a "
                        "unique_ref_no so the client can look it up and retry safely",
                        cause=exc,
                    ) from exc
                # Wait before looking: a create EnKash is still committing would be missed
                # by an immediate lookup, then sent again.
                await policy.sleep(policy.backoff(round_, exc))
                found = await self._find_by_ref(ref, exc)
                if found is not None:
                    self._client.stats.reconciled += 1
                    logger.info("create of %s: found after an ambiguous failure", ref)
                    return found, True
                if round_ == policy.max_attempts:
                    raise  # EnKash does not have it: the failure is the answer
                logger.info(
                    "create of %s failed (%s) and EnKash does not have it; sending again "
                    "(round %d of %d)",
                    ref,
                    exc,
                    round_ + 1,
                    policy.max_attempts,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find_by_ref(self, ref: str, failure: EnkashError) -> Customer | None:
        """The customer stored with exactly ``unique_ref_no == ref``, or None when EnKash
        surely has none. Raises ``AmbiguousCreateError`` when that cannot be told."""
        lookup = self.search(CustomerSearch(unique_ref_no=ref), page_size=_LOOKUP_PAGE, prefetch=0)
        try:
            async with contextlib.aclosing(lookup.pages()) as pages:
                page = await anext(pages, None)
        except EnkashError as exc:
            raise AmbiguousCreateError(
                f"create of {ref!r} failed after it may have reached EnKash ({failure}), and "
                f"looking it up failed too ({exc}); the customer may or may not exist",
                cause=failure,
            ) from exc
        if page is None:
            return None
        # Only an exact match counts: a filter EnKash applied loosely (or ignored) must
        # not pass another customer off as this one.
        for customer in page.items:
            if customer.unique_ref_no == ref:
                return customer
        every_match_seen = page.next_offset is None and (
            page.records_count is None or page.records_count <= len(page.items)
        )
        if every_match_seen:
            return None  # and none is this customer
        raise AmbiguousCreateError(
            f"create of {ref!r} failed after it may have reached EnKash ({failure}), and "
            f"looking it up by unique_ref_no matched {page.records_count or 'many'} customers, "
            f"none of the first {len(page.items)} with exactly this reference; the customer "
            "may or may not exist",
            cause=failure,
        )

    def create_many(
        self,
        items: Iterable[CustomerCreate] | AsyncIterable[CustomerCreate],
        *,
        concurrency: int = 32,
        ordered: bool = True,
        require_unique_ref: bool = False,
        retry: RetryPolicy | None = None,
    ) -> AsyncGenerator[CreateResult, None]:
        """Create every customer of ``items`` and yield one :class:`CreateResult` per input.

        ``items`` may be any iterable or async iterable; it is read lazily, so a
        generator of a million customers is never held in memory. Up to ``concurrency``
        creates run at once (within the client-wide limits). Results come in input
        order, or as they complete with ``ordered=False``. A failure is reported in its
        result, never raised, so no input is dropped or reported twice. With
        ``require_unique_ref`` an input without ``unique_ref_no`` is refused unsent.
        """
        if not _is_int(concurrency) or concurrency < 1:
            raise ValidationError([FieldError("concurrency", "must be an integer >= 1")])

        async def one(index: int, item: CustomerCreate) -> CreateResult:
            tally = _Tally()
            started = time.perf_counter()
            customer = None
            reconciled = False
            error: EnkashError | None = None
            try:
                # (Anything but a CustomerCreate is refused by _create, for what it is.)
                if (
                    require_unique_ref
                    and isinstance(item, CustomerCreate)
                    and item.unique_ref_no is None
                ):
                    raise ValidationError(
                        [FieldError("unique_ref_no", "is required (require_unique_ref=True)")]
                    )
                customer, reconciled = await self._create(item, retry, tally)
            except EnkashError as exc:
                error = exc
            return CreateResult(
                input=item,
                index=index,
                customer=customer,
                error=error,
                attempts=tally.attempts,
                reconciled=reconciled,
                elapsed=time.perf_counter() - started,
            )

        return run_bounded(items, one, concurrency=concurrency, ordered=ordered)

    def search(
        self,
        filter: CustomerSearch | None = None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        start_offset: int = 0,
        max_items: int | None = None,
        order_by: str | None = None,
        direction: SortDirection | str | None = None,
        prefetch: int = DEFAULT_PREFETCH,
        dedupe: bool = False,
        consistent: bool = False,
        retry: RetryPolicy | None = None,
    ) -> SearchIterator[Customer]:
        """Customers matching ``filter``, streamed lazily page by page.

        Returns at once; nothing is sent until the result is iterated. ``page_size`` is
        1 to 5000; ``order_by`` a ``Customer`` attribute (or its wire name);
        ``start_offset`` resumes; ``max_items`` caps; up to ``prefetch`` pages are fetched
        ahead concurrently once the total is known (0: one page at a time; at most
        ``prefetch + 1`` pages are held in memory). ``dedupe`` yields each customer once;
        ``consistent`` raises ``PaginationError`` if the total changes mid-search (see
        :class:`~enkash_async.SearchIterator` for what each mode guarantees).

        Raises ``ValidationError`` at once for bad arguments; iteration raises like
        :meth:`create`, and ``PaginationError`` when EnKash repeats a page.
        """
        problems = _search_problems(
            filter, page_size, start_offset, max_items, order_by, direction, prefetch
        )
        if problems:
            raise ValidationError(problems, model="search")
        body = dumps(_convert.to_wire(filter) if filter is not None else {})
        base: dict[str, str] = {}
        if order_by is not None:
            base["orderBy"] = _ORDER_FIELDS[order_by]
        if direction is not None:
            base["direction"] = SortDirection(direction).value
        client = self._client

        async def fetch(offset: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
            params = {**base, "offset": str(offset), "limit": str(limit)}
            payload = await client._send(
                SEARCH_PATH,
                body,
                params=params,
                idempotent=True,
                retry=retry,
                operation=f"search customers (offset {offset})",
                decode=_convert.page_records_from_wire,
            )
            page: tuple[list[dict[str, Any]], int | None] = payload
            return page

        return SearchIterator(
            fetch,
            page_size=page_size,
            start_offset=start_offset,
            max_items=max_items,
            prefetch=prefetch,
            decode=_convert.customer_from_record,
            key=_convert.record_key,
            dedupe=dedupe,
            consistent=consistent,
        )


def _created_customer(payload: Any) -> Customer:
    if payload is None:
        raise UnexpectedResponseError("create succeeded but the reply has no payload")
    return _convert.customer_from_wire(payload)


def _is_ambiguous(error: EnkashError) -> bool:
    """Whether a failed create may have reached EnKash and been processed."""
    if isinstance(error, APIError):
        status = failure_status(error)  # a SYSTEM_ERROR envelope on HTTP 200 is a 500
        return status is not None and (status == 408 or status >= 500) and status != 503
    if isinstance(error, ConnectError):
        return False
    return isinstance(error, (TransportError, UnexpectedResponseError))


def _search_problems(
    filter: object,
    page_size: object,
    start_offset: object,
    max_items: object,
    order_by: object,
    direction: object,
    prefetch: object,
) -> list[FieldError]:
    problems = []
    if filter is not None and not isinstance(filter, CustomerSearch):
        problems.append(
            FieldError("filter", f"must be a CustomerSearch, got {type(filter).__name__}")
        )
    if not _is_int(page_size) or not 1 <= page_size <= MAX_PAGE_SIZE:  # type: ignore[operator]
        problems.append(
            FieldError(
                "page_size", f"must be an integer from 1 to {MAX_PAGE_SIZE}; got {page_size!r}"
            )
        )
    if not _is_int(start_offset) or start_offset < 0:  # type: ignore[operator]
        problems.append(
            FieldError("start_offset", f"must be an integer >= 0; got {start_offset!r}")
        )
    if max_items is not None and (not _is_int(max_items) or max_items < 0):  # type: ignore[operator]
        problems.append(FieldError("max_items", f"must be an integer >= 0; got {max_items!r}"))
    if not _is_int(prefetch) or prefetch < 0:  # type: ignore[operator]
        problems.append(FieldError("prefetch", f"must be an integer >= 0; got {prefetch!r}"))
    if order_by is not None and (not isinstance(order_by, str) or order_by not in _ORDER_FIELDS):
        problems.append(FieldError("order_by", f"must be a Customer field; got {order_by!r}"))
    if direction is not None and direction not in ("ASC", "DESC"):
        problems.append(FieldError("direction", f"must be ASC or DESC; got {direction!r}"))
    return problems


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
