"""``create_many`` never sends one reference twice, and records every outcome the moment
it is known (``on_result``), even when its consumer goes away."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from _support import CREATE_PATH, FakeTransport, Sent, fake_client, new_customer, ok, reply

from enkash_async import AmbiguousCreateError, CreateResult, ValidationError


def created(sent: Sent) -> Any:
    return reply(ok({"customerId": "C1", "id": 1, "legalName": "Acme"}))


async def test_a_reference_repeated_in_one_batch_is_refused_unsent_naming_the_first() -> None:
    transport = FakeTransport().answer(CREATE_PATH, created, repeat=True)
    inputs = [new_customer("ERP-1"), new_customer("ERP-2"), new_customer("ERP-1")]
    async with fake_client(transport) as client:
        results = [r async for r in client.customers.create_many(inputs)]
    assert [r.ok for r in results] == [True, True, False]
    error = results[2].error
    assert isinstance(error, ValidationError)
    assert "input 0" in str(error) and error.fields == ("unique_ref_no",)
    assert results[2].attempts == 0
    assert len(transport.sent) == 2


async def test_on_result_sees_every_outcome_before_it_is_yielded() -> None:
    transport = FakeTransport().answer(CREATE_PATH, created, repeat=True)
    recorded: list[CreateResult] = []
    inputs = [new_customer(f"ERP-{i}") for i in range(10)]
    async with fake_client(transport) as client:
        async for result in client.customers.create_many(inputs, on_result=recorded.append):
            assert result in recorded
    assert sorted(r.index for r in recorded) == list(range(10))


async def test_creates_cut_off_after_sending_are_reported_as_ambiguous() -> None:
    release = asyncio.Event()

    async def hang(sent: Sent) -> Any:
        await release.wait()
        return created(sent)

    transport = FakeTransport().answer(CREATE_PATH, created)
    transport.answer(CREATE_PATH, hang, repeat=True)
    recorded: list[CreateResult] = []
    inputs = [new_customer(f"ERP-{i}") for i in range(10)]
    async with fake_client(transport) as client:
        results = client.customers.create_many(inputs, concurrency=4, on_result=recorded.append)
        async with contextlib.aclosing(results):
            async for _ in results:
                break  # the consumer goes away with three creates sent and unanswered
    assert len(transport.sent) == 4
    assert len(recorded) == 4  # one finished, three cut off
    cut_off = [r for r in recorded if not r.ok]
    assert len(cut_off) == 3
    assert all(isinstance(r.error, AmbiguousCreateError) for r in cut_off)
