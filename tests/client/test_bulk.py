"""``customers.create_many``: lazy input, one result per input, bounded concurrency, cancellation.

Whatever fails, every input gets exactly one :class:`CreateResult`, in input order or
completion order; the input is read only as fast as work frees up; closing the results
early cancels what is in flight and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from _support import CREATE_PATH, FakeTransport, Sent, other_tasks, reply

from enkash_async import (
    AmbiguousCreateError,
    BadRequestError,
    CreateResult,
    CustomerCreate,
    CustomerSearch,
    EnkashClient,
    KeyContactCreate,
    RateLimitError,
    ValidationError,
)
from enkash_async.testing import FakeEnkash, Fault


def new_customer(i: int, *, name: str | None = None, ref: bool = True) -> CustomerCreate:
    legal = name or f"Company {i}"
    return CustomerCreate(
        legal_name=legal,
        customer_key_contacts=[
            KeyContactCreate(name="Asha Rao", legal_name=legal, mobile="9876543210", deleted=False)
        ],
        unique_ref_no=f"ERP-{i:07d}" if ref else None,
    )


class Endpoint:
    """A create endpoint for the fake transport: answers each body by its legal name.

    ``turns[name]`` event-loop turns pass before the answer; a name starting with
    ``Reject``/``Ambiguous``/``Overloaded`` gets 400/500/429; ``Hang`` never answers.
    """

    def __init__(self) -> None:
        self.turns: dict[str, int] = {}
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak = 0
        self.cancelled = 0

    async def reply(self, sent: Sent) -> Any:
        body = json.loads(sent.body or b"")
        name = body["legalName"]
        self.bodies.append(body)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for _ in range(self.turns.get(name, 0)):
                await asyncio.sleep(0)
            if name.startswith("Hang"):
                await asyncio.Event().wait()
            for prefix, status in (("Reject", 400), ("Ambiguous", 500), ("Overloaded", 429)):
                if name.startswith(prefix):
                    error = {"errorType": "VALIDATION_ERROR", "errorMessage": prefix}
                    return reply({"errorResponse": error}, status)
            stored = {"customerId": f"C-{name}", "legalName": name, "uniqueRefNo": None}
            stored["uniqueRefNo"] = body.get("uniqueRefNo")
            return reply({"payload": stored, "response_code": 0})
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1


@pytest.fixture
def endpoint(transport: FakeTransport) -> Endpoint:
    answers = Endpoint()
    transport.answer(CREATE_PATH, answers.reply, repeat=True)
    return answers


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def check_one_result_per_input(results: list[CreateResult], inputs: list[Any]) -> None:
    assert sorted(r.index for r in results) == list(range(len(inputs)))
    for result in results:
        assert result.input is inputs[result.index]
        assert (result.customer is None) != (result.error is None)
        assert result.elapsed >= 0


# --------------------------------------------------------------------------- one result each


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "completion_order"])
async def test_every_input_gets_exactly_one_result_whatever_fails(
    client: EnkashClient, endpoint: Endpoint, ordered: bool
) -> None:
    inputs: list[Any] = [
        new_customer(0),
        None,
        {"legalName": "A dict is not a CustomerCreate"},
        new_customer(3, name="Reject Pvt Ltd"),
        "ERP-0000004",
        new_customer(5, name="Ambiguous Pvt Ltd", ref=False),
        CustomerSearch(legal_name="not a create"),
        new_customer(7, name="Overloaded Pvt Ltd"),
        new_customer(8),
    ]
    results = [
        r async for r in client.customers.create_many(inputs, concurrency=3, ordered=ordered)
    ]
    check_one_result_per_input(results, inputs)
    if ordered:
        assert [r.index for r in results] == list(range(len(inputs)))
    by_index = {r.index: r for r in results}
    assert [i for i, r in by_index.items() if r.ok] == [0, 8]
    for i in (1, 2, 4, 6):
        error = by_index[i].error
        assert isinstance(error, ValidationError) and "must be a CustomerCreate" in str(error)
        assert by_index[i].attempts == 0
    assert isinstance(by_index[3].error, BadRequestError)
    assert isinstance(by_index[5].error, AmbiguousCreateError)
    assert isinstance(by_index[7].error, RateLimitError)
    assert (by_index[3].attempts, by_index[5].attempts, by_index[7].attempts) == (1, 1, 4)
    names = [body["legalName"] for body in endpoint.bodies]
    assert sorted(set(names)) == sorted(
        ["Company 0", "Reject Pvt Ltd", "Ambiguous Pvt Ltd", "Overloaded Pvt Ltd", "Company 8"]
    )
    assert len(names) == 4 + 4  # one each, and the 429 four times


async def test_require_unique_ref_still_names_a_non_create_for_what_it_is(
    client: EnkashClient, endpoint: Endpoint
) -> None:
    inputs: list[Any] = [{"uniqueRefNo": "ERP-1"}]
    [result] = [r async for r in client.customers.create_many(inputs, require_unique_ref=True)]
    assert isinstance(result.error, ValidationError)
    assert "must be a CustomerCreate" in str(result.error)


async def test_results_come_in_input_order_when_ordered(
    client: EnkashClient, endpoint: Endpoint
) -> None:
    inputs = [new_customer(i) for i in range(6)]
    for i in range(6):
        endpoint.turns[f"Company {i}"] = (6 - i) * 10  # the last input finishes first
    results = [r async for r in client.customers.create_many(inputs, concurrency=6)]
    assert [r.index for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r.customer.legal_name for r in results if r.customer] == [
        f"Company {i}" for i in range(6)
    ]


async def test_results_come_in_completion_order_when_not_ordered(
    client: EnkashClient, endpoint: Endpoint
) -> None:
    inputs = [new_customer(i) for i in range(6)]
    for i in range(6):
        endpoint.turns[f"Company {i}"] = (6 - i) * 10
    results = [r async for r in client.customers.create_many(inputs, concurrency=6, ordered=False)]
    assert [r.index for r in results] == [5, 4, 3, 2, 1, 0]
    check_one_result_per_input(results, inputs)


async def test_async_iterable_input_is_accepted(client: EnkashClient, endpoint: Endpoint) -> None:
    async def source() -> AsyncIterator[CustomerCreate]:
        for i in range(5):
            await asyncio.sleep(0)
            yield new_customer(i)

    results = [r async for r in client.customers.create_many(source(), concurrency=2)]
    assert [r.index for r in results] == list(range(5))
    assert all(r.ok for r in results)
    assert len(endpoint.bodies) == 5


async def test_result_counts_attempts_and_elapsed(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(
        CREATE_PATH,
        reply({"errorResponse": {"errorType": "SYSTEM_ERROR"}}, 503),
        reply({"errorResponse": {}}, 429),
        reply({"payload": {"customerId": "C1"}, "response_code": 0}),
    )
    [result] = [r async for r in client.customers.create_many([new_customer(1)])]
    assert result.ok and result.attempts == 3 and not result.reconciled
    assert result.elapsed > 0


@pytest.mark.parametrize("concurrency", [0, -1, True, 2.5])
def test_bad_concurrency_is_refused_at_once(client: EnkashClient, concurrency: Any) -> None:
    with pytest.raises(ValidationError) as info:
        client.customers.create_many([], concurrency=concurrency)
    assert info.value.fields == ("concurrency",)


async def test_no_inputs_yield_no_results(client: EnkashClient) -> None:
    assert [r async for r in client.customers.create_many([])] == []


# --------------------------------------------------------------------------- laziness


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "completion_order"])
async def test_a_million_inputs_are_read_only_as_work_frees_up(
    client: EnkashClient, endpoint: Endpoint, ordered: bool
) -> None:
    pulled = 0

    def million() -> Iterator[CustomerCreate]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield new_customer(i)

    concurrency = 8
    # In flight, at most `concurrency`; finished but not yet yielded (completion order
    # only: one wait may finish several), at most as many again.
    outstanding = concurrency if ordered else 2 * concurrency
    seen = []
    async with contextlib.aclosing(
        client.customers.create_many(million(), concurrency=concurrency, ordered=ordered)
    ) as results:
        async for result in results:
            seen.append(result.index)
            assert pulled <= len(seen) + outstanding
            if len(seen) == 50:
                break
    assert pulled <= 50 + outstanding
    assert len(endpoint.bodies) <= pulled  # nothing unread was sent


async def test_inputs_already_sent_are_reported_before_the_inputs_own_error(
    client: EnkashClient, endpoint: Endpoint
) -> None:
    # A CSV reader that fails on row 5: rows 0-4 were sent and may exist now, so their
    # results must reach the caller (to checkpoint them) before the error does.
    def rows() -> Iterator[CustomerCreate]:
        for i in range(5):
            yield new_customer(i)
        raise RuntimeError("row 5 is malformed")

    got: list[CreateResult] = []
    with pytest.raises(RuntimeError, match="row 5"):
        async for result in client.customers.create_many(rows(), concurrency=32):
            got.append(result)
    assert [r.index for r in got] == [0, 1, 2, 3, 4]
    assert all(r.ok for r in got)
    assert len(endpoint.bodies) == 5


async def test_async_input_error_also_comes_after_the_results_of_sent_inputs(
    client: EnkashClient, endpoint: Endpoint
) -> None:
    async def rows() -> AsyncIterator[CustomerCreate]:
        for i in range(3):
            yield new_customer(i)
        raise OSError("the file went away")

    got: list[CreateResult] = []
    with pytest.raises(OSError, match="went away"):
        async for result in client.customers.create_many(rows(), ordered=False):
            got.append(result)
    assert sorted(r.index for r in got) == [0, 1, 2]


# --------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "completion_order"])
async def test_concurrency_bounds_the_creates_in_flight_at_the_server(ordered: bool) -> None:
    async with FakeEnkash(seed=1, latency={"create": 0.02}) as server:
        async with EnkashClient(server.url, token=server.token) as client:
            inputs = [new_customer(i) for i in range(24)]
            results = [
                r
                async for r in client.customers.create_many(inputs, concurrency=6, ordered=ordered)
            ]
        assert server.stats.peak_in_flight == 6
        assert server.stats.created == 24
    check_one_result_per_input(results, inputs)


# --------------------------------------------------------------------------- breaking out


async def test_closing_the_results_early_cancels_the_creates_in_flight(
    client: EnkashClient, endpoint: Endpoint, loop_errors: list[dict[str, Any]]
) -> None:
    inputs = [new_customer(0)] + [new_customer(i, name=f"Hang {i}") for i in range(1, 20)]
    async with contextlib.aclosing(client.customers.create_many(inputs, concurrency=5)) as it:
        async for result in it:
            assert result.index == 0
            break
    assert endpoint.in_flight == 0
    assert endpoint.cancelled == 4  # the four hanging creates in flight at the break
    assert len(endpoint.bodies) == 5  # nothing further was started
    await _settle()
    assert other_tasks() == set()
    assert client.limiter.in_flight == 0
    gc.collect()
    assert loop_errors == []


async def test_breaking_out_without_closing_cancels_once_the_results_are_dropped(
    client: EnkashClient, endpoint: Endpoint, loop_errors: list[dict[str, Any]]
) -> None:
    inputs = [new_customer(0)] + [new_customer(i, name=f"Hang {i}") for i in range(1, 20)]
    async for result in client.customers.create_many(inputs, concurrency=5, ordered=False):
        assert result.index == 0
        break
    gc.collect()  # the loop's async-generator hook closes the dropped results
    await _settle()
    assert endpoint.in_flight == 0
    assert endpoint.cancelled == len(endpoint.bodies) - 1 >= 4  # every hanging create
    assert len(endpoint.bodies) <= 6
    assert other_tasks() == set()
    assert client.limiter.in_flight == 0
    assert loop_errors == []


async def test_cancelling_the_consumer_cancels_the_creates_in_flight(
    client: EnkashClient, endpoint: Endpoint, loop_errors: list[dict[str, Any]]
) -> None:
    inputs = [new_customer(i, name=f"Hang {i}") for i in range(10)]

    async def consume() -> None:
        async with contextlib.aclosing(client.customers.create_many(inputs, concurrency=3)) as it:
            async for _ in it:
                pass

    task = asyncio.ensure_future(consume())
    await _settle()
    assert endpoint.in_flight == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert endpoint.in_flight == 0 and endpoint.cancelled == 3
    await _settle()
    assert other_tasks() == set()
    assert loop_errors == []


async def test_an_injected_fault_is_reported_once_for_its_input() -> None:
    async with FakeEnkash(seed=2) as server:
        server.inject(Fault.status(400), route="create", times=1)
        async with EnkashClient(server.url, token=server.token) as client:
            inputs = [new_customer(i) for i in range(10)]
            results = [r async for r in client.customers.create_many(inputs, concurrency=1)]
        assert server.stats.created == 9
    check_one_result_per_input(results, inputs)
    assert [type(r.error) for r in results if r.error] == [BadRequestError]
    assert results[0].error is not None  # concurrency 1: the first request got the fault
