"""``enkash-async demo``: the all-local run against an embedded FakeEnkash."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from _cli import (
    RecordedBar,
    number,
    summary,
)

import enkash_async.testing
from enkash_async.cli import main
from enkash_async.testing import FakeEnkash
from enkash_async.testing._store import Store


class RecordingFake(FakeEnkash):
    """A FakeEnkash that remembers every instance, to look inside the demo's server."""

    made: list[FakeEnkash]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        type(self).made.append(self)


@pytest.fixture
def demo_servers(monkeypatch: pytest.MonkeyPatch) -> list[FakeEnkash]:
    made: list[FakeEnkash] = []
    monkeypatch.setattr(RecordingFake, "made", made, raising=False)
    monkeypatch.setattr(enkash_async.testing, "FakeEnkash", RecordingFake)
    return made


def test_demo_creates_every_customer_reads_each_back_once_and_exits_0(
    capsys: pytest.CaptureFixture[str], demo_servers: list[FakeEnkash]
) -> None:
    assert main(["demo", "--customers", "300", "--concurrency", "16", "--page-size", "70"]) == 0

    (fake,) = demo_servers
    stored = Counter(customer["uniqueRefNo"] for customer in fake.customers)
    assert stored == Counter(f"DEMO-{n:07d}" for n in range(1, 301))
    rows = summary(capsys.readouterr().out)
    assert number(rows["customers created"]) == fake.stats.created == 300
    assert number(rows["customers read back"]) == 300
    assert rows["creates failed"] == "0"
    assert (rows["lost"], rows["duplicated"]) == ("0", "0")


def test_demo_summary_reports_requests_retries_rates_and_latency(
    capsys: pytest.CaptureFixture[str], demo_servers: list[FakeEnkash]
) -> None:
    assert main(["demo", "--customers", "300", "--concurrency", "16", "--page-size", "70"]) == 0

    (fake,) = demo_servers
    rows = summary(capsys.readouterr().out)
    # The client's count of requests is what the server saw (logins counted apart).
    seen = fake.stats.requests
    assert number(rows["HTTP requests"]) == seen["create"] + seen["search"]
    assert number(rows["logins"]) == fake.stats.logins == seen["token"]
    assert number(rows["retries"]) == 0  # no faults were injected
    assert number(rows["create requests/s"]) > 0
    assert number(rows["search records/s"]) > 0
    p50, p99 = (re.fullmatch(r"([\d.]+) ms", rows[f"create latency {q}"]) for q in ("p50", "p99"))
    assert p50 is not None and p99 is not None
    assert 0 < float(p50[1]) <= float(p99[1])


def test_demo_progress_bars_count_every_create_and_every_record_read(
    bars: list[RecordedBar], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--customers", "300", "--page-size", "70"]) == 0

    creating, reading = bars
    assert (creating.total, creating.advanced) == (300, 300)
    assert (reading.total, reading.advanced) == (300, 300)


def test_demo_with_faults_retries_and_counts_each_retry(
    capsys: pytest.CaptureFixture[str], demo_servers: list[FakeEnkash]
) -> None:
    assert main(["demo", "--customers", "200", "--fault-rate", "0.2", "--seed", "11"]) == 0

    (fake,) = demo_servers
    rows = summary(capsys.readouterr().out)
    faults = sum(fake.stats.faults_injected.values())
    failed = number(rows["creates failed"].split()[0])
    assert faults > 0
    # Every fault is either retried, or is the last answer of a call that then failed.
    assert number(rows["retries"]) == faults - failed
    assert number(rows["customers created"]) == 200 - failed == fake.stats.created


def _store_add_mangling(monkeypatch: pytest.MonkeyPatch, ref: str, copies: int) -> None:
    """Make the fake server store the customer ``ref`` ``copies`` times (0: acknowledge the
    create but lose it), as a faulty EnKash might."""
    original = Store.add

    def add(self: Store, wires: Any) -> None:
        mangled = []
        for wire in wires:
            mangled += [wire] * (copies if wire["uniqueRefNo"] == ref else 1)
        original(self, mangled)

    monkeypatch.setattr(Store, "add", add)


def test_demo_exits_1_when_a_created_customer_is_missing_from_the_search(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _store_add_mangling(monkeypatch, "DEMO-0000042", copies=0)

    assert main(["demo", "--customers", "120"]) == 1

    out, err = capsys.readouterr()
    rows = summary(out)
    assert (rows["customers created"], rows["customers read back"]) == ("120", "119")
    assert (rows["lost"], rows["duplicated"]) == ("1", "0")
    assert "FAILED: 1 customer lost, 0 duplicated" in err


def test_demo_exits_1_when_a_customer_comes_back_twice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _store_add_mangling(monkeypatch, "DEMO-0000042", copies=2)

    assert main(["demo", "--customers", "120"]) == 1

    out, err = capsys.readouterr()
    rows = summary(out)
    assert rows["customers read back"] == "121"
    assert (rows["lost"], rows["duplicated"]) == ("0", "1")
    assert "FAILED: 0 customers lost, 1 duplicated" in err
