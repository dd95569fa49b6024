"""Chaos: thousands of calls against a fake EnKash failing in every way it can.

* ``create_many`` of 2,000 customers, each with a ``unique_ref_no``, while one create
  in five fails (every kind of fault, including the ambiguous ones where EnKash stored
  the customer and then broke the reply) and lookups fail too: afterwards EnKash holds
  exactly the 2,000, none twice, and every input has exactly one successful result.
* A 50,000-customer export with ``prefetch=4`` while one search in ten fails: every
  customer is yielded exactly once, in order.

The fault draws are seeded, so a run is repeatable up to the order in which concurrent
requests reach the server. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from enkash_async import CustomerCreate, EnkashClient, KeyContactCreate, RetryPolicy
from enkash_async.testing import FakeEnkash, Fault, Injection, Route

# Waits kept tiny; enough attempts that a call failing every one of them is not a
# plausible outcome of the fault rates below (0.2 ** 10 per call).
CHAOS_POLICY = RetryPolicy(
    initial_backoff=0.001,
    max_backoff=0.01,
    max_retry_after=0.01,
    max_attempts=10,
    deadline=None,
    # The fake commits before it answers, so no commit lands late: no settle wait needed.
    settle_time=0.05,
)

CREATE_FAULTS: dict[str, Fault] = {
    "status 500": Fault.status(500),
    "status 502": Fault.status(502),
    "status 503": Fault.status(503, retry_after=0),
    "status 504": Fault.status(504),
    "status 429": Fault.status(429, retry_after=0),
    "html 502": Fault.html(502),
    "truncated": Fault.truncated(),
    "disconnect": Fault.disconnect(),
    "drop": Fault.drop(),
    "envelope SYSTEM_ERROR": Fault.envelope_error("SYSTEM_ERROR"),
    "after_commit status 500": Fault.after_commit(status=500),
    "after_commit disconnect": Fault.after_commit(disconnect=True),
    "after_commit truncated": Fault.after_commit(truncated=True),
}

# Every fault but those after a commit, which only a create can suffer.
SEARCH_FAULTS: dict[str, Fault] = {
    name: fault for name, fault in CREATE_FAULTS.items() if not name.startswith("after_commit")
}


def inject_evenly(
    server: FakeEnkash, faults: dict[str, Fault], route: Route, total: float
) -> dict[str, Injection]:
    """Inject ``faults`` so that each hits an equal share of ``total`` of the requests.

    The server tries rules in order and fires at most one, so rule ``k`` fires with
    chance ``share / (1 - k * share)`` of the requests the earlier rules let through.
    """
    share = total / len(faults)
    return {
        name: server.inject(fault, route=route, rate=share / (1 - k * share))
        for k, (name, fault) in enumerate(faults.items())
    }


def new_customer(i: int) -> CustomerCreate:
    return CustomerCreate(
        legal_name=f"Chaos Traders {i} Pvt Ltd",
        customer_key_contacts=[
            KeyContactCreate(
                name="Asha Rao", legal_name=f"Chaos Traders {i}", mobile="9876543210", deleted=False
            )
        ],
        unique_ref_no=f"CHAOS-{i:07d}",
    )


def report(title: str, lines: dict[str, object]) -> None:
    print(f"\n[chaos] {title}")
    for name, value in lines.items():
        print(f"[chaos]   {name}: {value}")


@pytest.mark.slow
async def test_2000_creates_under_20_percent_faults_store_each_customer_exactly_once() -> None:
    count = 2000
    async with FakeEnkash(seed=2024) as server:
        create_faults = inject_evenly(server, CREATE_FAULTS, "create", 0.20)
        search_faults = inject_evenly(server, SEARCH_FAULTS, "search", 0.10)
        pulled = 0

        def inputs() -> Iterator[CustomerCreate]:
            nonlocal pulled
            for i in range(count):
                pulled += 1
                yield new_customer(i)

        started = time.perf_counter()
        async with EnkashClient(
            server.url, credentials=server.credentials, retry=CHAOS_POLICY
        ) as client:
            results = [r async for r in client.customers.create_many(inputs(), concurrency=32)]
        elapsed = time.perf_counter() - started

        refs = Counter(c["uniqueRefNo"] for c in server.customers)
        duplicates = {ref: n for ref, n in refs.items() if n > 1}
        report(
            f"create_many of {count:,} with unique refs, 20% create faults, 10% search faults",
            {
                "elapsed": f"{elapsed:.2f}s",
                "requests": dict(server.stats.requests),
                "create faults fired": {n: i.fired for n, i in create_faults.items()},
                "search faults fired": {n: i.fired for n, i in search_faults.items()},
                "faults by kind": dict(server.stats.faults_injected),
                "customers stored": server.stored_count,
                "duplicates": len(duplicates),
                "reconciled": sum(r.reconciled for r in results),
                "client retries": client.stats.retries,
                "failed results": sum(not r.ok for r in results),
            },
        )

        # Every fault kind really happened, on both routes.
        assert all(i.fired > 0 for i in create_faults.values())
        assert sum(i.fired for i in search_faults.values()) > 0
        # EnKash holds exactly the 2,000, none twice.
        assert duplicates == {}
        assert refs.keys() == {f"CHAOS-{i:07d}" for i in range(count)}
        assert server.stored_count == server.stats.created == count
        # Every input has exactly one result, and all succeeded.
        assert pulled == count
        assert [r.index for r in results] == list(range(count))
        assert [r.error for r in results if r.error is not None] == []
        for result in results:
            assert result.customer is not None
            assert result.customer.unique_ref_no == result.input.unique_ref_no
        # A customer stored before its reply broke was found, not created again: each
        # after-commit fault made exactly one reconciled result.
        after_commit = sum(i.fired for n, i in create_faults.items() if n.startswith("after"))
        assert sum(r.reconciled for r in results) == after_commit
        assert server.stats.logins == 1


@pytest.mark.slow
async def test_50000_record_export_under_10_percent_faults_yields_each_record_once() -> None:
    async with FakeEnkash(customers=50_000, seed=2025) as server:
        expected = [c["customerId"] for c in server.customers]
        faults = inject_evenly(server, SEARCH_FAULTS, "search", 0.10)
        started = time.perf_counter()
        async with EnkashClient(server.url, token=server.token, retry=CHAOS_POLICY) as client:
            seen = [c.customer_id async for c in client.customers.search(page_size=500, prefetch=4)]
        elapsed = time.perf_counter() - started
        repeated = sum(n - 1 for n in Counter(seen).values() if n > 1)
        report(
            "export of 50,000 customers, page_size 500, prefetch 4, 10% search faults",
            {
                "elapsed": f"{elapsed:.2f}s",
                "requests": dict(server.stats.requests),
                "faults fired": {n: i.fired for n, i in faults.items()},
                "faults by kind": dict(server.stats.faults_injected),
                "records yielded": len(seen),
                "repeated": repeated,
                "missing": len(set(expected) - set(seen)),
                "client retries": client.stats.retries,
            },
        )
        assert sum(i.fired for i in faults.values()) > 0
        assert server.stats.requests["search"] > 100
        assert seen == expected


@pytest.mark.parametrize("prefetch", [0, 4])
async def test_export_under_25_percent_faults_matches_a_clean_export(
    prefetch: int,
) -> None:
    # The same filter twice, clean and under faults: the faulty run sees the same list.
    async with FakeEnkash(customers=3000, seed=7) as server:
        async with EnkashClient(server.url, token=server.token, retry=CHAOS_POLICY) as client:
            clean = [c.customer_id async for c in client.customers.search(page_size=100)]
            inject_evenly(server, SEARCH_FAULTS, "search", 0.25)
            faulty = [
                c.customer_id
                async for c in client.customers.search(page_size=100, prefetch=prefetch)
            ]
        assert sum(server.stats.faults_injected.values()) > 0
    assert faulty == clean and len(clean) == 3000
