"""``client.customers``: create (with reconciliation) and search EnKash customers.

Knows the customer routes and what a create's failure means; it reaches EnKash only
through :class:`Api` (the client's ``_request``), never through the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Literal, Protocol, TypeVar

import attrs

from enkash_async import _wire
from enkash_async._bulk import run_bounded
from enkash_async._changes import customer_changes
from enkash_async._fast import JSONBytes, dumps
from enkash_async._hooks import CallRecord, Observer
from enkash_async._pagination import DEFAULT_PREFETCH, MAX_PAGE_SIZE, SearchIterator
from enkash_async._reply import decoded
from enkash_async._retry import AttemptBudget, RetryEvent, RetryPolicy, failure_status
from enkash_async._transport import new_request_id
from enkash_async._unset import UNSET, UnsetType
from enkash_async._validation import pattern_problem
from enkash_async._wire import read_record_reply, read_search_reply
from enkash_async.errors import (
    AmbiguousCreateError,
    APIError,
    ConnectError,
    EnkashError,
    FieldError,
    NotFoundError,
    PaginationError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from enkash_async.models import (
    CreateResult,
    Customer,
    CustomerCreate,
    CustomerSearch,
    CustomerUpdate,
    SortDirection,
)

__all__ = [
    "ACTIVATE_PATH",
    "CUSTOMER_PATH",
    "DEACTIVATE_PATH",
    "SEARCH_PATH",
    "Api",
    "Customers",
    "UpsertResult",
]

logger = logging.getLogger("enkash_async")

T = TypeVar("T")

#: The logical-call names hooks, spans and logs give (a create: sends and lookups together).
CREATE = "customers.create"
CREATE_MANY = "customers.create_many"
SEARCH_PAGE = "customers.search.page"
FIND_BY_REF = "customers.find_by_unique_ref"
# The paths with the customer's id left out, as spans name them (url.template).
_BY_ID = "{customerId}"

CUSTOMER_PATH = "/api/v0/customer"
SEARCH_PATH = "/api/v0/customer/search"
ACTIVATE_PATH = "/api/v0/customer/activate/"
# Not on any page EnKash published that we have seen: inferred from activate's path.
DEACTIVATE_PATH = "/api/v0/customer/deactivate/"

_ORDER_FIELDS: dict[str, str] = {
    **{a.name: _wire.wire_name(a) for a in attrs.fields(Customer)},
    **{_wire.wire_name(a): _wire.wire_name(a) for a in attrs.fields(Customer)},
}

#: Reads one customer record: a raw view from a search reply, or a mapping.
_read_customer = _wire.record_reader(Customer, "CustomerResponse")


def _page_records(payload: Any) -> tuple[list[Any], int | None]:
    """A search page's raw customer records and ``recordsCount``, shape-checked only."""
    return _wire.page_records_from_wire(payload, Customer)


# How many customers one reconciliation lookup by unique_ref_no reads.
_LOOKUP_PAGE = 20


class Api(Protocol):
    """What a resource needs of the client: its retry policy, one call, and a counter."""

    retry: RetryPolicy
    _observer: Observer

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
        parse: Callable[[JSONBytes], Any] = ...,
        request_id: str | None = None,
        template: str | None = None,
    ) -> T:
        """Send ``body`` to ``path`` (``method``, POST unless given) with auth and retries;
        ``parse`` the body, ``decode`` the payload."""
        ...

    def _note_reconciled(self) -> None:
        """Count a create found by reconciliation."""
        ...


class Customers:
    """``client.customers``: create and search EnKash customers."""

    def __init__(self, api: Api) -> None:
        self._api = api

    async def create(
        self, customer: CustomerCreate, *, retry: RetryPolicy | None = None
    ) -> Customer:
        """Create ``customer`` and return it as EnKash stored it.

        A create is resent at once only when it surely did not reach EnKash or was
        refused unprocessed (429, 503). When it fails after it may have reached EnKash
        (a timeout after sending, 500, 502, 504, a lost reply), a customer with a
        ``unique_ref_no`` is looked up by it once the policy's ``settle_time`` has
        passed: found, it is returned; surely absent, the create is sent again. Without
        ``unique_ref_no`` that case raises ``AmbiguousCreateError`` and nothing is resent.

        One create sends at most ``max_attempts`` create requests and ``max_attempts``
        lookup requests (8 with the default policy), logins aside, and ends by the
        policy's ``deadline``.

        Raises ``ValidationError`` before sending anything invalid, ``APIError``
        subclasses for EnKash's refusals, ``TransportError``, ``UnexpectedResponseError``
        and ``AmbiguousCreateError``.
        """
        policy = retry or self._api.retry
        return (await self._create(customer, policy, AttemptBudget(policy.max_attempts)))[0]

    async def _create(
        self, customer: CustomerCreate, policy: RetryPolicy, sends: AttemptBudget
    ) -> tuple[Customer, bool, str]:
        """The created (or found) customer, whether it was found by reconciliation, and
        the request id of the reply that gave it."""
        record = self._api._observer.begin(CREATE)
        if record is not None:  # observed: one logical call, its sends and lookups inside
            with record:
                made = await self._create(customer, policy, sends)
                record.reconciled = made[1]
                return made
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
        deadline_at = policy.call_deadline()
        lookups: AttemptBudget | None = None  # made on the first ambiguous failure only
        body = dumps(_wire.to_wire(customer))
        ref = customer.unique_ref_no
        while True:
            request_id = new_request_id()
            try:
                created = await self._api._request(
                    CUSTOMER_PATH,
                    body,
                    idempotent=False,
                    retry=policy,
                    operation=CREATE,
                    decode=_created_customer,
                    parse=read_record_reply,
                    budget=sends,
                    deadline_at=deadline_at,
                    request_id=request_id,
                )
                return created, False, request_id
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
                await self._settle(ref, exc, policy, sends.used, deadline_at)
                lookups = lookups or AttemptBudget(policy.max_attempts)
                lookup_id = new_request_id()
                found = await self._find_by_ref(ref, exc, policy, lookups, deadline_at, lookup_id)
                if found is not None:
                    self._api._note_reconciled()
                    logger.info("create of %s: found after an ambiguous failure", ref)
                    return found, True, lookup_id
                if sends.spent:
                    raise  # EnKash does not have it: the failure is the answer
                logger.info(
                    "create of %s failed (%s) and EnKash does not have it; sending again "
                    "(request %d of at most %d)",
                    ref,
                    exc,
                    sends.used + 1,
                    sends.limit,
                )

    async def _settle(
        self,
        ref: str,
        failure: EnkashError,
        policy: RetryPolicy,
        round_: int,
        deadline_at: float | None,
    ) -> None:
        """Wait until a commit EnKash may still be making has had ``settle_time`` to land
        (and the backoff has passed). Raises ``AmbiguousCreateError`` when the deadline
        leaves no time to wait and look."""
        wait = max(policy.settle_time, policy.backoff(round_, failure))
        if deadline_at is not None and policy.clock() + wait >= deadline_at:
            raise AmbiguousCreateError(
                f"create of {ref!r} failed after it may have reached EnKash ({failure}), and "
                "the deadline leaves no time to let a late commit land and look it up; the "
                "customer may or may not exist",
                cause=failure,
            )
        await policy.sleep(wait)

    async def _find_by_ref(
        self,
        ref: str,
        failure: EnkashError,
        policy: RetryPolicy,
        lookups: AttemptBudget,
        deadline_at: float | None,
        request_id: str,
    ) -> Customer | None:
        """The customer stored with exactly ``unique_ref_no == ref``, or None when EnKash
        surely has none. Raises ``AmbiguousCreateError`` when that cannot be told."""
        if lookups.spent:
            raise AmbiguousCreateError(
                f"create of {ref!r} failed after it may have reached EnKash ({failure}), and "
                "no lookup is left in this call's budget; the customer may or may not exist",
                cause=failure,
            )
        try:
            return await self._lookup(ref, policy, lookups, deadline_at, request_id)
        except _TooManyMatches as exc:
            raise AmbiguousCreateError(
                f"create of {ref!r} failed after it may have reached EnKash ({failure}), and "
                f"{exc}; the customer may or may not exist",
                cause=failure,
            ) from exc
        except EnkashError as exc:
            raise AmbiguousCreateError(
                f"create of {ref!r} failed after it may have reached EnKash ({failure}), and "
                f"looking it up failed too ({exc}); the customer may or may not exist",
                cause=failure,
            ) from exc

    async def find_by_unique_ref(
        self, unique_ref_no: str, *, retry: RetryPolicy | None = None
    ) -> Customer | None:
        """The customer stored with exactly this ``unique_ref_no``, or None when EnKash
        has none: the lookup a create's reconciliation makes, for a rerun to use.

        Only an exact match counts, whatever EnKash's filter matched. Raises
        ``PaginationError`` when the filter matched more customers than one lookup
        reads and none of them is this one (it cannot tell), and raises like
        :meth:`search` otherwise.
        """
        policy = retry or self._api.retry
        deadline_at = policy.call_deadline()
        return await self._lookup(
            unique_ref_no, policy, AttemptBudget(policy.max_attempts), deadline_at
        )

    async def _lookup(
        self,
        ref: str,
        policy: RetryPolicy,
        budget: AttemptBudget,
        deadline_at: float | None,
        request_id: str | None = None,
    ) -> Customer | None:
        records, records_count = await self._api._request(
            SEARCH_PATH,
            dumps(_wire.to_wire(CustomerSearch(unique_ref_no=ref))),
            params={"offset": "0", "limit": str(_LOOKUP_PAGE)},
            idempotent=True,
            retry=policy,
            operation=FIND_BY_REF,
            decode=_page_records,
            parse=read_search_reply,
            budget=budget,
            deadline_at=deadline_at,
            request_id=request_id,
        )
        # Only an exact match counts: a filter EnKash applied loosely (or ignored) must
        # not pass another customer off as this one.
        for customer in [_customer_from_record(record) for record in records]:
            if customer.unique_ref_no == ref:
                return customer
        every_match_seen = (
            len(records) < _LOOKUP_PAGE if records_count is None else records_count <= len(records)
        )
        if every_match_seen:
            return None  # and none is this customer
        raise _TooManyMatches(
            f"looking it up by unique_ref_no matched {records_count or 'many'} customers, "
            f"none of the first {len(records)} with exactly this reference"
        )

    async def get(self, customer_id: str, *, retry: RetryPolicy | None = None) -> Customer:
        """The customer with this ``customer_id`` (EnKash has no get-by-id: a search by
        its ``customerIds`` filter, exact match only).

        Raises ``ValidationError`` for an id that is not ``KC`` and 14 upper-case letters
        or digits, ``NotFoundError`` when EnKash has no such customer, and like
        :meth:`search` otherwise.
        """
        _check_customer_id(customer_id)
        found = [
            c
            async for c in self.search(
                CustomerSearch(customer_ids=(customer_id,)), page_size=20, prefetch=0, retry=retry
            )
            if c.customer_id == customer_id
        ]
        if not found:
            raise NotFoundError(f"EnKash has no customer {customer_id!r}", status=404)
        return found[0]

    async def update(
        self,
        customer_id: str,
        changes: CustomerUpdate,
        *,
        retry: RetryPolicy | None = None,
    ) -> Customer | None:
        """PATCH the customer with ``changes`` (only its set fields are sent); returns the
        customer EnKash answers with, or None when its reply carries no record.

        Idempotent, so retried like a search page (transport errors, 408, 429, 5xx) under
        the call's budget and deadline. Raises ``ValidationError`` before sending a bad id
        or anything but a ``CustomerUpdate``, ``NotFoundError`` for an unknown customer,
        and like :meth:`create` otherwise.
        """
        _check_customer_id(customer_id)
        if not isinstance(changes, CustomerUpdate):
            raise ValidationError(
                [FieldError("changes", f"must be a CustomerUpdate, got {type(changes).__name__}")]
            )
        return await self._api._request(
            CUSTOMER_PATH + "/" + customer_id,
            dumps(_wire.to_wire(changes)),
            method="PATCH",
            idempotent=True,
            retry=retry,
            operation="customers.update",
            decode=_optional_customer,
            template=CUSTOMER_PATH + "/" + _BY_ID,
        )

    async def activate(self, customer_id: str, *, retry: RetryPolicy | None = None) -> None:
        """Mark the customer active (``PUT .../activate/{id}``); activating an active
        customer changes nothing. Retried like :meth:`update`; raises like it."""
        await self._lifecycle("PUT", ACTIVATE_PATH, customer_id, "customers.activate", retry)

    async def deactivate(self, customer_id: str, *, retry: RetryPolicy | None = None) -> None:
        """Mark the customer inactive (``PUT .../deactivate/{id}``: that path is inferred
        from activate's, since EnKash's page for it was not published). Raises like
        :meth:`update`."""
        await self._lifecycle("PUT", DEACTIVATE_PATH, customer_id, "customers.deactivate", retry)

    async def delete(self, customer_id: str, *, retry: RetryPolicy | None = None) -> None:
        """Delete the customer (``DELETE /api/v0/customer/{id}``).

        Retried like :meth:`update`; a retry answered 404 after an earlier attempt whose
        outcome is unknown (a timeout, a lost reply, a 5xx) means that attempt deleted it,
        and is success. Raises ``NotFoundError`` when the customer did not exist, and like
        :meth:`update` otherwise.
        """
        uncertain: list[bool] = []
        policy = retry or self._api.retry
        observed = attrs.evolve(policy, on_retry=_noting_uncertain(policy, uncertain))
        try:
            await self._lifecycle(
                "DELETE", CUSTOMER_PATH + "/", customer_id, "customers.delete", observed
            )
        except NotFoundError:
            if not any(uncertain):
                raise
            logger.info(
                "delete of %s: gone after an attempt whose outcome was unknown", customer_id
            )

    async def _lifecycle(
        self,
        method: str,
        prefix: str,
        customer_id: str,
        operation: str,
        retry: RetryPolicy | None,
    ) -> None:
        _check_customer_id(customer_id)
        await self._api._request(
            prefix + customer_id,
            None,
            method=method,
            idempotent=True,
            retry=retry,
            operation=operation,
            decode=_ignore,
            template=prefix + _BY_ID,
        )

    async def upsert(
        self,
        wanted: CustomerCreate,
        *,
        active: bool | None = None,
        assigned_agent: str | UnsetType | None = UNSET,
        branch_codes: Sequence[str] | UnsetType | None = UNSET,
        retry: RetryPolicy | None = None,
    ) -> UpsertResult:
        """Make EnKash hold ``wanted``, found by its ``unique_ref_no``: created when absent
        (exactly once, as :meth:`create`), else PATCHed with only the fields that differ
        (:func:`~enkash_async.customer_changes`), and activated or deactivated when
        ``active`` is given and differs. ``assigned_agent`` and ``branch_codes``, which a
        create cannot set, are compared and sent when given.

        Two callers upserting the same new reference at the same moment can both find it
        absent; give each reference one writer (the sync's checkpoint does).

        Raises ``ValidationError`` for a customer without ``unique_ref_no``, and like
        :meth:`create` and :meth:`update`.
        """
        ref = wanted.unique_ref_no if isinstance(wanted, CustomerCreate) else None
        if not ref:
            raise ValidationError(
                [
                    FieldError(
                        "unique_ref_no", "is required to upsert: it is how the customer is found"
                    )
                ]
            )
        current = await self.find_by_unique_ref(ref, retry=retry)
        if current is None:
            customer = await self.create(wanted, retry=retry)
            extras: dict[str, Any] = {}
            if assigned_agent:
                extras["assigned_agent"] = assigned_agent
            if branch_codes is not UNSET and branch_codes:
                extras["branch_codes"] = tuple(branch_codes)
            changed: list[str] = []
            if extras and customer.customer_id:
                update = CustomerUpdate(**extras)
                customer = await self.update(customer.customer_id, update, retry=retry) or customer
                changed += update.changed_fields()
            if active is False and customer.customer_id:
                await self.deactivate(customer.customer_id, retry=retry)
                customer = attrs.evolve(customer, active=False)
            return UpsertResult("created", customer, tuple(changed))
        changes = customer_changes(
            current, wanted, assigned_agent=assigned_agent, branch_codes=branch_codes
        )
        customer_id = current.customer_id
        if customer_id is None:
            raise UnexpectedResponseError(f"EnKash's customer {ref!r} has no customerId")
        changed = list(changes.changed_fields())
        customer = current
        if changes:
            customer = await self.update(customer_id, changes, retry=retry) or current
        if active is not None and bool(current.active) != active:
            await (self.activate if active else self.deactivate)(customer_id, retry=retry)
            customer = attrs.evolve(customer, active=active)
            changed.append("active")
        return UpsertResult("updated" if changed else "unchanged", customer, tuple(changed))

    def create_many(
        self,
        items: Iterable[CustomerCreate] | AsyncIterable[CustomerCreate],
        *,
        concurrency: int = 32,
        ordered: bool = True,
        require_unique_ref: bool = False,
        retry: RetryPolicy | None = None,
        on_result: Callable[[CreateResult], None] | None = None,
    ) -> AsyncGenerator[CreateResult, None]:
        """Create every customer of ``items`` and yield one :class:`CreateResult` per input.

        ``items`` may be any iterable or async iterable; it is read lazily, so a
        generator of a million customers is never held in memory. Up to ``concurrency``
        creates run at once (within the client-wide limits). Results come in input
        order, or as they complete with ``ordered=False``. A failure is reported in its
        result, never raised, so no input is dropped or reported twice. With
        ``require_unique_ref`` an input without ``unique_ref_no`` is refused unsent; an
        input repeating an earlier input's ``unique_ref_no`` is always refused unsent
        (``ValidationError`` naming the earlier index).

        ``on_result`` is called with each result the moment it is known, before it
        waits its turn to be yielded, so whatever the consumer does next nothing done is
        left unrecorded; a create cut off by cancellation after it was sent is reported
        there (only) with an ``AmbiguousCreateError``. An exception it raises stops the batch.
        """
        if not _is_int(concurrency) or concurrency < 1:
            raise ValidationError([FieldError("concurrency", "must be an integer >= 1")])
        policy = retry or self._api.retry
        first_index: dict[str, int] = {}

        def refusal(index: int, item: CustomerCreate) -> ValidationError | None:
            # Checked when the input is read (in input order), never when its task runs.
            if not isinstance(item, CustomerCreate):
                return None  # refused by _create, for what it is
            ref = item.unique_ref_no
            if ref is None:
                if require_unique_ref:
                    return ValidationError(
                        [FieldError("unique_ref_no", "is required (require_unique_ref=True)")]
                    )
                return None
            earlier = first_index.setdefault(ref, index)
            if earlier != index:
                return ValidationError(
                    [
                        FieldError(
                            "unique_ref_no",
                            f"repeats input {earlier}'s unique_ref_no in this batch; "
                            "not sent (one reference, one customer)",
                        )
                    ]
                )
            return None

        batch = self._api._observer.begin_batch(CREATE_MANY, {"concurrency": concurrency})

        def report(result: CreateResult) -> CreateResult:
            if batch is not None:
                outcome = "created" if result.ok else "failed"
                if result.reconciled:
                    outcome = "reconciled"
                batch.details[outcome] = batch.details.get(outcome, 0) + 1
            if on_result is not None:
                on_result(result)
            return result

        async def one(
            index: int, item: CustomerCreate, refused: ValidationError | None
        ) -> CreateResult:
            sends = AttemptBudget(policy.max_attempts)
            started = time.perf_counter()
            customer = None
            reconciled = False
            request_id: str | None = None
            error: EnkashError | None = refused
            try:
                if refused is None:
                    with Observer.inside(batch):  # each create a child of the batch
                        customer, reconciled, request_id = await self._create(item, policy, sends)
            except EnkashError as exc:
                error = exc
            except asyncio.CancelledError:
                if sends.used:
                    report(
                        CreateResult(
                            input=item,
                            index=index,
                            error=AmbiguousCreateError(
                                "create_many was cancelled after this create was sent; the "
                                "customer may or may not exist"
                            ),
                            attempts=sends.used,
                            elapsed=time.perf_counter() - started,
                        )
                    )
                raise
            return report(
                CreateResult(
                    input=item,
                    index=index,
                    customer=customer,
                    error=error,
                    attempts=sends.used,
                    reconciled=reconciled,
                    elapsed=time.perf_counter() - started,
                    request_id=request_id,
                )
            )

        def work(index: int, item: CustomerCreate) -> Awaitable[CreateResult]:
            return one(index, item, refusal(index, item))

        results = run_bounded(items, work, concurrency=concurrency, ordered=ordered)
        return results if batch is None else _observed_batch(batch, results)

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
        body = dumps(_wire.to_wire(filter) if filter is not None else {})
        base: dict[str, str] = {}
        if order_by is not None:
            base["orderBy"] = _ORDER_FIELDS[order_by]
        if direction is not None:
            base["direction"] = SortDirection(direction).value
        api = self._api

        async def fetch(offset: int, limit: int) -> tuple[list[Any], int | None, str]:
            record = api._observer.begin(SEARCH_PAGE, {"offset": offset, "limit": limit})
            if record is None:
                return await page(offset, limit)
            with record:
                got = await page(offset, limit)
                record.details["records"] = len(got[0])
                return got

        async def page(offset: int, limit: int) -> tuple[list[Any], int | None, str]:
            params = {**base, "offset": str(offset), "limit": str(limit)}
            request_id = new_request_id()
            records, records_count = await api._request(
                SEARCH_PATH,
                body,
                params=params,
                idempotent=True,
                retry=retry,
                operation=SEARCH_PAGE,
                decode=_page_records,
                parse=read_search_reply,
                request_id=request_id,
            )
            return records, records_count, request_id

        return SearchIterator(
            fetch,
            page_size=page_size,
            start_offset=start_offset,
            max_items=max_items,
            prefetch=prefetch,
            decode=_customer_from_record,
            key=_record_key,
            dedupe=dedupe,
            consistent=consistent,
        )


@attrs.frozen
class UpsertResult:
    """What :meth:`Customers.upsert` did: ``outcome`` is ``"created"``, ``"updated"`` or
    ``"unchanged"``; ``customer`` as EnKash holds it now; ``changed``, the fields sent
    (Python names, and ``"active"`` when it was toggled)."""

    outcome: Literal["created", "updated", "unchanged"]
    customer: Customer
    changed: tuple[str, ...] = ()


async def _observed_batch(
    batch: CallRecord, results: AsyncGenerator[CreateResult, None]
) -> AsyncGenerator[CreateResult, None]:
    """``results``, reported as one batch call from the first result to the last."""
    batch.open()  # not ``with``: a generator must not set its consumer's context
    error: BaseException | None = None
    try:
        async with contextlib.aclosing(results):
            async for result in results:
                yield result
    except BaseException as exc:
        error = exc
        raise
    finally:
        batch.close(error)


class _TooManyMatches(PaginationError):
    """A lookup's filter matched more customers than it read, none of them exact."""


def _customer_from_record(record: Any) -> Customer:
    """A record decoded, by the one rule for what an unreadable reply raises."""
    return decoded(_read_customer, record)


def _optional_customer(payload: Any) -> Customer | None:
    """A reply's customer record, or None when the payload is none (EnKash's PATCH and
    lifecycle payloads are undocumented)."""
    if isinstance(payload, dict) and payload:
        return decoded(_read_customer, payload)
    return None


def _ignore(payload: Any) -> None:
    return None


def _check_customer_id(customer_id: object) -> None:
    if not isinstance(customer_id, str):
        problem: str | None = f"must be a string, got {type(customer_id).__name__}"
    else:
        problem = pattern_problem("customerId", customer_id)
    if problem is not None:
        raise ValidationError([FieldError("customer_id", problem)])


def _noting_uncertain(policy: RetryPolicy, uncertain: list[bool]) -> Callable[[RetryEvent], None]:
    """An ``on_retry`` that records whether a failed attempt may have reached EnKash, and
    still tells the caller's own ``on_retry``."""
    theirs = policy.on_retry

    def note(event: RetryEvent) -> None:
        uncertain.append(_is_ambiguous(event.error))
        if theirs is not None:
            theirs(event)

    return note


def _record_key(record: Any) -> Hashable:
    """A record's identity for dedupe and loop detection; one that is not a string or
    number (a list, an object) is a typed error."""
    key = _wire.record_key(record)
    if key is None or (isinstance(key, (str, int)) and not isinstance(key, bool)):
        return key
    raise UnexpectedResponseError(
        f"a customer record's customerId/id is a JSON {type(key).__name__}, not a string or number"
    )


def _created_customer(payload: Any) -> Customer:
    if payload is None:
        raise UnexpectedResponseError("create succeeded but the reply has no payload")
    return _read_customer(payload)


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
