"""sync_rows and plan_rows: one outcome per row, exactly one customer per unique_ref_no."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from enkash_async import (
    AmbiguousCreateError,
    CustomerCreate,
    EnkashClient,
    RetryPolicy,
    ServerError,
)
from enkash_async.sync import (
    CheckpointError,
    KnownRefs,
    Outcome,
    RefState,
    SourceRow,
    SqliteCheckpoint,
    SyncOutcome,
    SyncTarget,
    plan_rows,
    sync_rows,
)
from enkash_async.testing import FakeEnkash, Fault

NO_WAIT = RetryPolicy(max_attempts=3, initial_backoff=0.0, max_backoff=0.0, settle_time=0.0)


def customer(i: int, *, ref: str | None = None, name: str | None = None) -> CustomerCreate:
    return CustomerCreate.from_dict(
        {
            "legalName": name or f"Sync {i} Traders Pvt Ltd",
            "customerKeyContacts": [
                {
                    "name": f"Asha {i}",
                    "legalName": f"Asha Rao {i}",
                    "mobile": f"98{i:08d}",
                    "deleted": False,
                }
            ],
            **({"uniqueRefNo": ref} if ref is not None else {"uniqueRefNo": f"SY-{i:05d}"}),
        }
    )


@pytest.fixture
async def server() -> AsyncIterator[FakeEnkash]:
    async with FakeEnkash(customers=0) as fake:
        yield fake


@pytest.fixture
async def client(server: FakeEnkash) -> AsyncIterator[EnkashClient]:
    async with EnkashClient(server.url, credentials=server.credentials, retry=NO_WAIT) as made:
        yield made


@pytest.fixture
async def checkpoint(server: FakeEnkash, tmp_path: Path) -> AsyncIterator[SqliteCheckpoint]:
    store = SqliteCheckpoint(tmp_path / "sync.sqlite", SyncTarget.for_user(server.url, "u"))
    yield store
    await store.aclose()


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[SyncOutcome] = []

    def __call__(self, outcome: SyncOutcome) -> None:
        self.outcomes.append(outcome)

    def by_line(self) -> dict[int, Outcome]:
        lines = [o.line for o in self.outcomes]
        assert len(lines) == len(set(lines)), "a row got two outcomes"
        return {o.line: o.outcome for o in self.outcomes}


def refs_stored(server: FakeEnkash) -> list[str]:
    return sorted(c["uniqueRefNo"] for c in server.customers)


async def test_each_row_is_created_and_reported_once(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    seen = Recorder()

    summary = await sync_rows(
        [customer(i) for i in range(1, 41)],
        client=client,
        checkpoint=checkpoint,
        concurrency=5,
        on_outcome=seen,
    )

    assert seen.by_line() == {i: Outcome.CREATED for i in range(1, 41)}
    assert (summary.created, summary.found, summary.rejected, summary.failed) == (40, 0, 0, 0)
    assert refs_stored(server) == [f"SY-{i:05d}" for i in range(1, 41)]
    states = await checkpoint.states([f"SY-{i:05d}" for i in range(1, 41)])
    assert set(states.values()) == {RefState.DONE}


async def test_an_async_iterable_of_customers_is_a_source(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    async def rows() -> AsyncIterator[CustomerCreate]:
        for i in range(1, 6):
            yield customer(i)

    summary = await sync_rows(rows(), client=client, checkpoint=checkpoint)

    assert summary.created == 5
    assert len(server.customers) == 5


async def test_a_row_without_unique_ref_no_is_rejected_unsent(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    seen = Recorder()
    no_ref = CustomerCreate.from_dict(
        {
            "legalName": "No Ref Ltd",
            "customerKeyContacts": [
                {"name": "A", "legalName": "A B", "mobile": "9876543210", "deleted": False}
            ],
        }
    )

    await sync_rows([customer(1), no_ref], client=client, checkpoint=checkpoint, on_outcome=seen)

    assert seen.by_line() == {1: Outcome.CREATED, 2: Outcome.REJECTED}
    (rejected,) = [o for o in seen.outcomes if o.outcome is Outcome.REJECTED]
    assert rejected.reasons[0].startswith("uniqueRefNo: is required")
    assert server.stats.requests["create"] == 1


async def test_an_invalid_row_is_rejected_with_every_reason_and_its_line(
    client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    seen = Recorder()
    rows = [SourceRow(7, None, ("legalName: is required", "pinCode: must be 6 digits"))]

    summary = await sync_rows(rows, client=client, checkpoint=checkpoint, on_outcome=seen)

    (outcome,) = seen.outcomes
    assert (outcome.line, outcome.outcome) == (7, Outcome.REJECTED)
    assert outcome.reasons == ("legalName: is required", "pinCode: must be 6 digits")
    assert summary.rejected == 1


async def test_a_ref_repeated_with_other_data_is_rejected_naming_both_lines(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    server.inject(Fault.latency(0.05), route="create")  # the first is in flight meanwhile
    seen = Recorder()
    rows = [customer(1), customer(2), customer(1, name="Edited Ltd"), customer(1)]

    await sync_rows(rows, client=client, checkpoint=checkpoint, concurrency=8, on_outcome=seen)

    assert seen.by_line() == {
        1: Outcome.CREATED,
        2: Outcome.CREATED,
        3: Outcome.REJECTED,
        4: Outcome.UNCHANGED,
    }
    (rejected,) = [o for o in seen.outcomes if o.line == 3]
    assert "line 1" in rejected.reasons[0] and "line 3" in rejected.reasons[0]
    assert server.stats.requests["create"] == 2
    assert server.stats.requests.get("update", 0) == 0
    assert refs_stored(server) == ["SY-00001", "SY-00002"]


async def test_a_ref_repeated_with_the_same_data_in_later_batches_is_sent_once(
    server: FakeEnkash,
    client: EnkashClient,
    checkpoint: SqliteCheckpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import enkash_async.sync._core as core

    monkeypatch.setattr(core, "_BATCH", 2)
    seen = Recorder()
    rows = [customer(1), customer(2), customer(3), customer(1), customer(4), customer(1)]

    summary = await sync_rows(rows, client=client, checkpoint=checkpoint, on_outcome=seen)

    assert (summary.created, summary.unchanged) == (4, 2)
    assert [o.detail for o in seen.outcomes if o.line in (4, 6)] == [
        "same uniqueRefNo as line 1"
    ] * 2
    assert server.stats.requests["create"] == 4


async def test_create_only_finds_a_repeated_ref_without_comparing(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    server.inject(Fault.latency(0.05), route="create")
    seen = Recorder()
    rows = [customer(1), customer(2), customer(1, name="Edited Ltd"), customer(1)]

    await sync_rows(rows, client=client, checkpoint=checkpoint, on_outcome=seen, create_only=True)

    assert seen.by_line() == {
        1: Outcome.CREATED,
        2: Outcome.CREATED,
        3: Outcome.FOUND,
        4: Outcome.FOUND,
    }
    assert server.stats.requests["create"] == 2


async def test_a_rerun_skips_done_refs_without_a_request(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    rows = [customer(i) for i in range(1, 11)]
    await sync_rows(rows, client=client, checkpoint=checkpoint)
    before = sum(server.stats.requests.values())

    summary = await sync_rows(rows, client=client, checkpoint=checkpoint)

    assert (summary.created, summary.unchanged) == (0, 10)
    assert sum(server.stats.requests.values()) == before


async def test_an_intended_ref_is_looked_up_first_and_found_or_created(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    await client.customers.create(customer(1))  # sent by a run that died before "done"
    await checkpoint.mark_intended(["SY-00001", "SY-00002"])
    seen = Recorder()

    await sync_rows(
        [customer(1), customer(2)], client=client, checkpoint=checkpoint, on_outcome=seen
    )

    assert seen.by_line() == {1: Outcome.UNCHANGED, 2: Outcome.CREATED}
    assert [o.detail for o in seen.outcomes if o.line == 1] == ["lookup"]
    assert refs_stored(server) == ["SY-00001", "SY-00002"]
    assert server.stats.requests["create"] == 2  # the dead run's and SY-00002's


async def test_reorder_insert_delete_and_edit_between_runs_make_one_create_and_one_patch(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    await sync_rows([customer(i) for i in range(1, 21)], client=client, checkpoint=checkpoint)
    changed = [customer(i) for i in range(20, 0, -1) if i != 7]  # reordered, 7 deleted
    changed[3] = customer(17, name="Renamed Traders Pvt Ltd")  # edited
    changed.insert(10, customer(99))  # inserted
    before = server.stats.requests["create"]

    summary = await sync_rows(changed, client=client, checkpoint=checkpoint)

    assert server.stats.requests["create"] - before == 1
    assert server.stats.requests["update"] == 1
    assert (summary.created, summary.updated, summary.unchanged) == (1, 1, 18)
    assert summary.changed_fields == {"legalName": 1}
    (renamed,) = server.find_by_unique_ref("SY-00017")
    assert renamed["legalName"] == "Renamed Traders Pvt Ltd"
    assert refs_stored(server) == sorted([f"SY-{i:05d}" for i in range(1, 21)] + ["SY-00099"])


async def test_a_reconciled_ambiguous_create_is_created_once(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    server.inject(Fault.after_commit(status=502), route="create", times=1)
    seen = Recorder()

    await sync_rows([customer(1)], client=client, checkpoint=checkpoint, on_outcome=seen)

    (outcome,) = seen.outcomes
    assert (outcome.outcome, outcome.detail) == (Outcome.CREATED, "reconciled")
    assert server.stats.requests["create"] == 1
    assert refs_stored(server) == ["SY-00001"]


async def test_a_create_enkash_refuses_fails_with_its_error_and_stays_intended(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    server.inject(Fault.status(500), route="create")
    server.inject(Fault.status(500), route="search")
    seen = Recorder()

    summary = await sync_rows([customer(1)], client=client, checkpoint=checkpoint, on_outcome=seen)

    (outcome,) = seen.outcomes
    assert outcome.outcome is Outcome.FAILED
    assert outcome.error is not None
    assert summary.failed == 1
    assert await checkpoint.states(["SY-00001"]) == {"SY-00001": RefState.INTENDED}


async def test_outcomes_are_reported_as_they_happen_even_if_the_caller_stops(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    server.inject(Fault.latency(0.5), route="create", times=1)  # one slow create
    seen = Recorder()
    task = asyncio.ensure_future(
        sync_rows(
            [customer(i) for i in range(1, 11)],
            client=client,
            checkpoint=checkpoint,
            concurrency=10,
            on_outcome=seen,
        )
    )
    for _ in range(200):
        if len(seen.outcomes) == 9:
            break
        await asyncio.sleep(0.01)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert len(seen.outcomes) == 9
    await checkpoint.flush()
    done = [o.ref for o in seen.outcomes]
    states = await checkpoint.states([str(r) for r in done])
    assert set(states.values()) == {RefState.DONE}


async def test_a_checkpoint_that_cannot_record_intent_stops_the_sync_before_any_create(
    server: FakeEnkash,
    client: EnkashClient,
    checkpoint: SqliteCheckpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(refs: Sequence[str]) -> None:
        raise CheckpointError("disk I/O error", store=checkpoint.path)

    monkeypatch.setattr(checkpoint, "claim", broken)

    with pytest.raises(CheckpointError):
        await sync_rows([customer(1)], client=client, checkpoint=checkpoint)

    assert server.stats.requests["create"] == 0


async def test_known_refs_settle_rows_enkash_has_as_they_are_without_a_request(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    await client.customers.create(customer(1))
    known = KnownRefs()
    await known.load(client)
    searches = server.stats.requests["search"]

    summary = await sync_rows(
        [customer(1), customer(2)], client=client, checkpoint=checkpoint, known_refs=known
    )
    known.close()

    assert (summary.created, summary.unchanged) == (1, 1)
    assert server.stats.requests["search"] == searches
    assert refs_stored(server) == ["SY-00001", "SY-00002"]


async def test_concurrency_bounds_the_creates_in_flight(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    server.inject(Fault.latency(0.02), route="create")

    await sync_rows(
        [customer(i) for i in range(1, 31)], client=client, checkpoint=checkpoint, concurrency=4
    )

    assert server.stats.peak_in_flight <= 4


async def test_dry_run_sends_no_create_and_reports_what_a_run_would_do(
    server: FakeEnkash, client: EnkashClient
) -> None:
    await client.customers.create(customer(1))
    seen = Recorder()
    rows: list[Any] = [customer(1), customer(2), SourceRow(3, None, ("bad",)), customer(2)]

    summary = await plan_rows(rows, client=client, on_outcome=seen)

    assert seen.by_line() == {
        1: Outcome.UNCHANGED,
        2: Outcome.WOULD_CREATE,
        3: Outcome.REJECTED,
        4: Outcome.UNCHANGED,
    }
    assert (summary.would_create, summary.unchanged, summary.rejected) == (1, 2, 1)
    assert server.stats.requests["create"] == 1  # the setup's
    assert server.stats.requests["search"] == 1  # one pass over EnKash's customers


class Stop(Exception):
    pass


def _many(count: int) -> Iterator[CustomerCreate]:
    for i in range(count):
        yield customer(i)


async def test_rows_are_read_lazily(client: EnkashClient, checkpoint: SqliteCheckpoint) -> None:
    read = 0

    def counted() -> Iterator[CustomerCreate]:
        nonlocal read
        for item in _many(100_000):
            read += 1
            yield item

    seen: list[SyncOutcome] = []

    def stop_early(outcome: SyncOutcome) -> None:
        seen.append(outcome)
        if len(seen) == 10:
            raise Stop  # the caller stops consuming

    with pytest.raises(Stop):
        await sync_rows(
            counted(), client=client, checkpoint=checkpoint, concurrency=2, on_outcome=stop_early
        )

    assert read < 2_000


async def test_sync_refuses_a_bad_concurrency(
    client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    from enkash_async import ValidationError

    with pytest.raises(ValidationError, match="concurrency"):
        await sync_rows([], client=client, checkpoint=checkpoint, concurrency=0)


async def test_a_server_error_on_lookup_fails_the_row_and_sends_no_create(
    server: FakeEnkash, client: EnkashClient, checkpoint: SqliteCheckpoint
) -> None:
    await checkpoint.mark_intended(["SY-00001"])
    server.inject(Fault.status(500), route="search")
    seen = Recorder()

    await sync_rows([customer(1)], client=client, checkpoint=checkpoint, on_outcome=seen)

    (outcome,) = seen.outcomes
    assert outcome.outcome is Outcome.FAILED
    assert isinstance(outcome.error, AmbiguousCreateError)
    assert isinstance(outcome.error.__cause__, ServerError)
    assert server.stats.requests["create"] == 0


async def test_lookups_of_intended_refs_first_wait_the_settle_time_once(
    server: FakeEnkash, checkpoint: SqliteCheckpoint
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    policy = RetryPolicy(settle_time=1.5, sleep=sleep)
    await checkpoint.mark_intended(["SY-00001", "SY-00002", "SY-00003"])
    async with EnkashClient(server.url, credentials=server.credentials, retry=policy) as client:
        summary = await sync_rows(
            [customer(i) for i in (1, 2, 3)], client=client, checkpoint=checkpoint
        )

    assert waits == [1.5]  # a create sent just before a crash may still be committing
    assert summary.created == 3


async def test_a_ref_whose_first_row_finishes_while_the_next_batch_is_checked_is_not_resent(
    server: FakeEnkash,
    client: EnkashClient,
    checkpoint: SqliteCheckpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import enkash_async.sync._core as core

    monkeypatch.setattr(core, "_BATCH", 2)
    server.inject(Fault.latency(0.05), route="create")
    checked = checkpoint.claim

    async def slow_claim(refs: Sequence[str]) -> Any:
        await asyncio.sleep(0.3)  # the first row's create lands meanwhile
        return await checked(refs)

    monkeypatch.setattr(checkpoint, "claim", slow_claim)
    rows = [customer(1), customer(2), customer(1), customer(3)]

    summary = await sync_rows(rows, client=client, checkpoint=checkpoint)

    assert server.stats.requests["create"] == 3
    assert (summary.created, summary.unchanged) == (3, 1)
