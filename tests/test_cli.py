"""End to end tests of the ``enkash-async`` command line (``enkash_async.cli``).

Commands run through ``main(argv)``, the console script's entry point. Tests that need
to look at the server's state start a :class:`FakeEnkash` themselves and point the CLI at
it with ``ENKASH_*`` variables, running ``main`` in a worker thread (it calls
``asyncio.run``) while the test's loop serves the requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import enkash_async.testing
from enkash_async import CustomerCreate, EnkashClient
from enkash_async.cli import _commands, _import, main
from enkash_async.sync import CheckpointError, SqliteCheckpoint, SyncTarget
from enkash_async.testing import DEFAULT_CREDENTIALS, FakeEnkash, Fault
from enkash_async.testing._store import Store

Run = Callable[..., Awaitable[int]]
Start = Callable[..., Awaitable[FakeEnkash]]

# Every test runs without the caller's ENKASH_* configuration or CLI state.
pytestmark = pytest.mark.usefixtures("no_enkash_environment")

# --------------------------------------------------------------------------- helpers


@pytest.fixture
async def server(start: Start) -> FakeEnkash:
    return await start(customers=200, seed=3)


def use(server: FakeEnkash, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI at ``server`` through the ENKASH_* password-login variables."""
    credentials = server.credentials
    monkeypatch.setenv("ENKASH_BASE_URL", server.url)
    monkeypatch.setenv("ENKASH_CLIENT_ID", credentials.client_id)
    monkeypatch.setenv("ENKASH_CLIENT_SECRET", credentials.client_secret)
    monkeypatch.setenv("ENKASH_USERNAME", credentials.username)
    monkeypatch.setenv("ENKASH_PASSWORD", credentials.password)


@pytest.fixture
def cli(server: FakeEnkash, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run the CLI against ``server`` in a worker thread; returns the exit code."""
    use(server, monkeypatch)
    return run


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


class RecordedBar:
    """What a command told its progress bar."""

    def __init__(self, description: str, total: int | None) -> None:
        self.description = description
        self.totals = [total]
        self.advanced = 0

    @property
    def total(self) -> int | None:
        return self.totals[-1]

    def advance(self, amount: int = 1) -> None:
        self.advanced += amount

    def set_total(self, total: int | None) -> None:
        if total is not None:
            self.totals.append(total)


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[RecordedBar]:
    """Record every progress bar the commands open instead of drawing it."""
    opened: list[RecordedBar] = []

    @contextlib.contextmanager
    def progress(description: str, total: int | None) -> Iterator[RecordedBar]:
        bar = RecordedBar(description, total)
        opened.append(bar)
        yield bar

    monkeypatch.setattr(_commands, "progress", progress)
    monkeypatch.setattr(_import, "progress", progress)
    return opened


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any] | str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def summary(text: str) -> dict[str, str]:
    """The demo's summary table as {measure: value}."""
    cells = (re.fullmatch(r"\s*│\s*(.+?)\s*│\s*(.*?)\s*│\s*", line) for line in text.splitlines())
    return {match[1]: match[2] for match in cells if match}


def number(text: str) -> int:
    return int(text.replace(",", ""))


def wire_row(i: int, *, ref: bool = True) -> dict[str, Any]:
    """A valid customer in EnKash's wire format; even rows have a second contact."""
    contacts = [
        {
            "name": f"Asha {i}",
            "legalName": f"Asha Rao {i}",
            "mobile": f"98{i:08d}",
            "deleted": False,
        },
    ]
    if i % 2 == 0:
        contacts.append(
            {
                "name": f"Ravi {i}",
                "legalName": f"Ravi Iyer {i}",
                "mobile": f"97{i:08d}",
                "deleted": False,
                "email": f"ravi{i}@example.com",
            }
        )
    row: dict[str, Any] = {"legalName": f"Row {i} Traders Pvt Ltd", "customerKeyContacts": contacts}
    if ref:
        row["uniqueRefNo"] = f"IMP-{i:04d}"
    return row


def csv_row(i: int) -> dict[str, str]:
    """``wire_row(i)`` as a CSV row of wire names and dotted paths."""
    wire = wire_row(i)
    row = {"uniqueRefNo": wire["uniqueRefNo"], "legalName": wire["legalName"]}
    for n, contact in enumerate(wire["customerKeyContacts"]):
        for field, value in contact.items():
            text = str(value).lower() if isinstance(value, bool) else value
            row[f"customerKeyContacts.{n}.{field}"] = text
    if i % 3 == 0:
        row["customerReminders.0.dueDateDifference"] = str(i)
        row["customerReminders.0.reminderType"] = "ONCE"
    return row


def stored_once(server: FakeEnkash, ref: str) -> dict[str, Any]:
    """The one customer ``server`` stores with ``ref``; fails if there are none or more."""
    found = server.find_by_unique_ref(ref)
    assert len(found) == 1, f"{ref} is stored {len(found)} times"
    return found[0]


def target_of(server: FakeEnkash) -> SyncTarget:
    """The sync target of the CLI pointed at ``server`` by ``use``."""
    return SyncTarget.for_user(server.url, server.credentials.username)


def checkpoint_states(path: Path) -> dict[str, str]:
    """{uniqueRefNo: state} of every ref in a checkpoint file."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT ref, state FROM refs ORDER BY ref"))


def checkpoint_ids(path: Path) -> list[str | None]:
    """The customer ids a checkpoint recorded, in ref order."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT customer_id FROM refs ORDER BY ref")]


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def no_traceback(*texts: str) -> bool:
    return not any("Traceback" in text for text in texts)


async def create_directly(server: FakeEnkash, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Create ``rows`` on ``server`` without the CLI (as an earlier run would have)."""
    async with EnkashClient(server.url, credentials=server.credentials) as client:
        created = [await client.customers.create(CustomerCreate.from_dict(r)) for r in rows]
    return [str(customer.customer_id) for customer in created]


# --------------------------------------------------------------------------- demo


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


# --------------------------------------------------------------------------- create


async def test_create_from_a_file_prints_the_created_customer_as_json(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customer.json"
    source.write_text(json.dumps(wire_row(1)), encoding="utf-8")

    assert await cli("customers", "create", "--json", str(source)) == 0

    printed = json.loads(capsys.readouterr().out)
    stored = stored_once(server, "IMP-0001")
    assert printed["customerId"] == stored["customerId"]
    assert printed["legalName"] == stored["legalName"] == "Row 1 Traders Pvt Ltd"
    assert [c["mobile"] for c in printed["customerKeyContacts"]] == ["9800000001"]


def test_create_reads_the_customer_from_stdin_with_a_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(wire_row(2))))

    assert main(["customers", "create", "--fake", "--json", "-"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert printed["uniqueRefNo"] == "IMP-0002"
    assert printed["customerId"]
    assert [c["mobile"] for c in printed["customerKeyContacts"]] == ["9800000002", "9700000002"]


async def test_create_with_invalid_fields_names_each_field_and_sends_nothing(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = wire_row(3)
    bad["customerKeyContacts"][0]["mobile"] = "12345"
    bad["pinCode"] = "12"
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(bad), encoding="utf-8")

    assert await cli("customers", "create", "--json", str(source)) == 2

    out, err = capsys.readouterr()
    # In the caller's (wire) names, one problem per line.
    assert "\n  customerKeyContacts[0].mobile: must be 10 digits" in err
    assert "\n  pinCode: must be 6 digits" in err
    assert out == ""
    assert no_traceback(err)
    assert server.stats.requests["create"] == 0


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b'{"legalName": ', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"legalName": "Caf\xe9"}', "not UTF-8"),
    ],
    ids=["truncated-json", "not-an-object", "not-utf8"],
)
def test_create_with_an_unreadable_file_says_why_and_exits_2(
    content: bytes, complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customer.json"
    source.write_bytes(content)

    assert main(["customers", "create", "--fake", "--json", str(source)]) == 2

    err = capsys.readouterr().err
    assert complaint in err
    assert no_traceback(err)
    assert "row " not in err  # a single JSON document has no rows


def test_create_with_a_missing_file_names_it_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"

    assert main(["customers", "create", "--fake", "--json", str(missing)]) == 2

    err = capsys.readouterr().err
    assert str(missing) in err
    assert no_traceback(err)


async def test_create_refused_by_enkash_shows_its_message_and_exits_1(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.inject(
        Fault.status(400, error_type="VALIDATION_ERROR", message="PAN already registered"),
        route="create",
    )
    source = tmp_path / "customer.json"
    source.write_text(json.dumps(wire_row(4)), encoding="utf-8")

    assert await cli("customers", "create", "--json", str(source)) == 1

    out, err = capsys.readouterr()
    assert "PAN already registered" in err
    assert out == ""
    assert no_traceback(err)
    assert server.find_by_unique_ref("IMP-0004") == []


# --------------------------------------------------------------------------- search


async def test_search_jsonl_output_has_every_customer_of_the_server(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    output = tmp_path / "all.jsonl"

    assert await cli("customers", "search", "--page-size", "33", "--output", str(output)) == 0

    exported = read_jsonl(output)
    assert [c["customerId"] for c in exported] == [c["customerId"] for c in server.customers]
    assert [c["legalName"] for c in exported] == [c["legalName"] for c in server.customers]
    assert [c["uniqueRefNo"] for c in exported] == [c["uniqueRefNo"] for c in server.customers]


async def test_search_csv_output_has_a_header_and_one_row_per_customer(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    output = tmp_path / "all.csv"

    assert (
        await cli(
            "customers", "search", "--format", "csv", "--page-size", "50", "--output", str(output)
        )
        == 0
    )

    with output.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(server.customers) == 200
    for row, customer in zip(rows, server.customers, strict=True):
        assert row["customerId"] == customer["customerId"]
        assert row["legalName"] == customer["legalName"]
        for n, contact in enumerate(customer["customerKeyContacts"]):
            assert row[f"customerKeyContacts.{n}.mobile"] == contact["mobile"]


async def test_search_table_lists_the_matching_customers(
    cli: Run, server: FakeEnkash, capsys: pytest.CaptureFixture[str]
) -> None:
    word = server.customers[0]["legalName"].split()[-1]  # e.g. "Limited"
    matching = [c for c in server.customers if word.casefold() in c["legalName"].casefold()]
    assert 1 < len(matching) < len(server.customers)

    assert await cli("customers", "search", "--legal-name", word, "--format", "table") == 0

    out = capsys.readouterr().out
    assert f"{len(matching)} customers" in out
    listed = [c["customerId"] for c in server.customers if c["customerId"] in out]
    assert listed == [c["customerId"] for c in matching]


def _filters(customers: list[dict[str, Any]]) -> list[tuple[list[str], Callable[..., bool]]]:
    """(CLI flags, the customers they should select) for several filters."""
    word = customers[0]["legalName"].split()[0].upper()
    ref = customers[5]["uniqueRefNo"]
    ids = [customers[1]["customerId"], customers[7]["customerId"]]
    ifsc = next(c["ifsc"] for c in customers if c["ifsc"])
    return [
        (["--legal-name", word], lambda c: word.casefold() in c["legalName"].casefold()),
        (["--status", "INACTIVE"], lambda c: c["active"] is False),
        (
            ["--status", "ACTIVE", "--legal-name", word],
            lambda c: c["active"] is True and word.casefold() in c["legalName"].casefold(),
        ),
        (["--unique-ref-no", ref], lambda c: c["uniqueRefNo"] == ref),
        (["--customer-id", ids[0], "--customer-id", ids[1]], lambda c: c["customerId"] in ids),
        (["--ifsc", ifsc.lower()], lambda c: (c["ifsc"] or "").upper() == ifsc.upper()),
    ]


@pytest.mark.parametrize(
    "which", range(6), ids=["legal-name", "status", "two-filters", "ref", "ids", "ifsc"]
)
async def test_search_applies_the_filter_flags(
    which: int, cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    flags, selects = _filters(server.customers)[which]
    expected = [c["customerId"] for c in server.customers if selects(c)]
    assert 0 < len(expected) < len(server.customers)
    output = tmp_path / "found.jsonl"

    assert await cli("customers", "search", *flags, "--output", str(output)) == 0

    assert [c["customerId"] for c in read_jsonl(output)] == expected


async def test_search_orders_by_a_field_in_the_given_direction(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    output = tmp_path / "sorted.jsonl"

    assert (
        await cli(
            "customers",
            "search",
            "--order-by",
            "legalName",
            "--direction",
            "DESC",
            "--page-size",
            "60",
            "--output",
            str(output),
        )
        == 0
    )

    names = [c["legalName"] for c in read_jsonl(output)]
    assert sorted(names) == sorted(c["legalName"] for c in server.customers)
    assert names == sorted(names, reverse=True)


async def test_search_progress_shows_records_out_of_records_count(
    cli: Run, server: FakeEnkash, tmp_path: Path, bars: list[RecordedBar]
) -> None:
    inactive = sum(1 for c in server.customers if c["active"] is False)

    assert (
        await cli(
            "customers",
            "search",
            "--status",
            "INACTIVE",
            "--page-size",
            "7",
            "--output",
            str(tmp_path / "out.jsonl"),
        )
        == 0
    )

    (bar,) = bars
    assert (bar.total, bar.advanced) == (inactive, inactive)


async def test_search_max_items_caps_the_output_and_the_progress_total(
    cli: Run, server: FakeEnkash, tmp_path: Path, bars: list[RecordedBar]
) -> None:
    output = tmp_path / "first.jsonl"

    assert (
        await cli(
            "customers", "search", "--max-items", "25", "--page-size", "10", "--output", str(output)
        )
        == 0
    )

    exported = [c["customerId"] for c in read_jsonl(output)]
    assert exported == [c["customerId"] for c in server.customers[:25]]
    (bar,) = bars
    assert (bar.total, bar.advanced) == (25, 25)


async def test_search_draws_a_progress_bar_on_a_terminal(
    cli: Run,
    server: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)

    assert (
        await cli(
            "customers", "search", "--page-size", "30", "--output", str(tmp_path / "out.jsonl")
        )
        == 0
    )

    err = capsys.readouterr().err
    assert "exporting" in err
    assert "200/200" in err


async def test_search_with_a_bad_flag_fails_before_contacting_enkash(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "never.jsonl"

    assert await cli("customers", "search", "--order-by", "shoeSize", "--output", str(output)) == 2

    err = capsys.readouterr().err
    assert "\n  --order-by: must be a Customer field" in err  # the flag's name, as typed
    assert no_traceback(err)
    assert sum(server.stats.requests.values()) == 0
    assert not output.exists()


# --------------------------------------------------------------------------- import


def rejects_of(path: Path) -> dict[int, dict[str, Any]]:
    """{file line: entry} of a rejects file."""
    return {entry["line"]: entry for entry in read_jsonl(path)}


async def test_import_csv_creates_each_row_with_its_nested_columns(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    source = write_csv(tmp_path / "customers.csv", [csv_row(i) for i in range(1, 31)])

    assert await cli("customers", "import", str(source), "--concurrency", "4") == 0

    for i in range(1, 31):
        stored = stored_once(server, f"IMP-{i:04d}")
        expected = wire_row(i)
        assert stored["legalName"] == expected["legalName"]
        mobiles = [c["mobile"] for c in stored["customerKeyContacts"]]
        assert mobiles == [c["mobile"] for c in expected["customerKeyContacts"]]
        reminders = [
            (r["dueDateDifference"], r["reminderType"]) for r in stored["customerReminders"]
        ]
        assert reminders == ([(i, "ONCE")] if i % 3 == 0 else [])
    assert server.stats.created == 30
    assert not (tmp_path / "customers.csv.rejects.jsonl").exists()
    states = checkpoint_states(tmp_path / "customers.csv.checkpoint.sqlite")
    assert states == {f"IMP-{i:04d}": "done" for i in range(1, 31)}


async def test_import_jsonl_creates_each_row(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 21)])

    assert await cli("customers", "import", str(source)) == 0

    for i in range(1, 21):
        assert stored_once(server, f"IMP-{i:04d}")["legalName"] == f"Row {i} Traders Pvt Ltd"
    assert server.stats.created == 20
    assert "20 created, 0 found, 0 rejected, 0 failed" in capsys.readouterr().err


async def test_import_summary_table_counts_each_outcome_with_elapsed_and_rate(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_directly(server, [wire_row(1)])
    bad = wire_row(3)
    bad["customerKeyContacts"][0]["mobile"] = "12"
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), wire_row(2), bad])

    assert await cli("customers", "import", str(source)) == 1

    table = summary(capsys.readouterr().err)
    assert {k: table[k] for k in ("created", "found", "rejected", "failed")} == {
        "created": "1",
        "found": "1",
        "rejected": "1",
        "failed": "0",
    }
    assert table["elapsed"].endswith(" s")
    assert table["rate"].endswith("rows/s")


async def test_import_progress_bar_has_the_file_rows_as_total_and_advances_once_per_row(
    cli: Run, server: FakeEnkash, tmp_path: Path, bars: list[RecordedBar]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 13)])

    assert await cli("customers", "import", str(source)) == 0

    scan, bar = bars
    assert scan.description == "reading EnKash's customers"
    assert scan.total == scan.advanced == 200  # the server's customers, read once
    assert str(source) in bar.description
    assert bar.total == 12
    assert bar.advanced == server.stats.created == 12


async def test_import_sends_at_most_concurrency_creates_at_once(
    start: Start, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = await start(latency={"create": 0.05})
    use(server, monkeypatch)
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 16)])

    assert await run("customers", "import", str(source), "--concurrency", "3") == 0

    assert server.stats.created == 15
    assert 2 <= server.stats.peak_in_flight <= 3


async def test_import_concurrency_above_the_client_default_is_honoured(
    start: Start, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = await start(latency={"create": 1.0})
    use(server, monkeypatch)
    source = write_jsonl(tmp_path / "many.jsonl", [wire_row(i) for i in range(1, 131)])

    assert await run("customers", "import", str(source), "--concurrency", "130") == 0

    assert server.stats.created == 130
    assert server.stats.peak_in_flight > 100  # the client's default limit


async def test_import_rejects_rows_it_cannot_build_naming_the_file_line_and_why(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [csv_row(i) for i in range(1, 7)]
    rows[1]["customerKeyContacts.0.mobile"] = "12"  # line 3: fails validation
    rows[3]["customerKeyContacts.0.deleted"] = "maybe"  # line 5: not a boolean
    del rows[4]["legalName"]  # line 6: a required field is missing
    source = write_csv(tmp_path / "customers.csv", rows)

    assert await cli("customers", "import", str(source)) == 1

    rejects = rejects_of(tmp_path / "customers.csv.rejects.jsonl")
    assert set(rejects) == {3, 5, 6}
    assert any(r.startswith("customerKeyContacts.0.mobile: ") for r in rejects[3]["reasons"])
    assert "customerKeyContacts.0.deleted: must be true or false" in rejects[5]["reasons"][0]
    assert any(r.startswith("legalName: ") for r in rejects[6]["reasons"])
    assert {c["uniqueRefNo"] for c in server.created_customers} == {
        "IMP-0001",
        "IMP-0003",
        "IMP-0006",
    }
    err = capsys.readouterr().err
    assert "3 created, 0 found, 3 rejected" in err
    assert f"3 rows listed in {tmp_path / 'customers.csv.rejects.jsonl'}" in err
    assert no_traceback(err)


async def test_import_lists_rows_enkash_refuses_as_failed_with_its_reason(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    server.inject(
        Fault.status(400, error_type="VALIDATION_ERROR", message="PAN already registered"),
        route="create",
        times=1,
    )
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 4)])

    # One at a time, so the refused request is line 1's.
    assert await cli("customers", "import", str(source), "--concurrency", "1") == 1

    (reject,) = read_jsonl(tmp_path / "customers.jsonl.rejects.jsonl")
    assert (reject["line"], reject["outcome"]) == (1, "failed")
    assert "PAN already registered" in reject["reasons"][0]
    assert server.find_by_unique_ref("IMP-0001") == []
    assert {c["uniqueRefNo"] for c in server.created_customers} == {"IMP-0002", "IMP-0003"}


@pytest.mark.parametrize(
    ("column", "cell", "complaint"),
    [
        ("customerKeyContacts.0.deleted", "maybe", "deleted: must be true or false"),
        ("customerReminders.0.dueDateDifference", "soon", "must be a whole number"),
        ("legalName.short", "Acme", "clashes with another column"),
        ("customerKeyContacts.0", "x", "customerKeyContacts.0: must be an object"),
        ("customerKeyContacts.1000000.mobile", "9876543210", "too large"),
    ],
    ids=["boolean", "integer", "scalar-and-nested", "trailing-index", "huge-index"],
)
async def test_import_bad_csv_cells_reject_their_row_only(
    column: str,
    cell: str,
    complaint: str,
    cli: Run,
    server: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [csv_row(i) for i in (1, 3, 5)]
    for row in rows:
        row.setdefault(column, "")
    rows[1][column] = cell  # line 3
    source = write_csv(tmp_path / "customers.csv", rows)

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / "customers.csv.rejects.jsonl")
    assert reject["line"] == 3
    assert complaint in " ".join(reject["reasons"])
    assert no_traceback(capsys.readouterr().err)
    assert {c["uniqueRefNo"] for c in server.created_customers} == {"IMP-0001", "IMP-0005"}


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ('{"legalName": "Acme", ', "not valid JSON"),
        ("[1, 2, 3]", "must be a JSON object"),
        ('{"legalName": "Acme", "customerKeyContacts": [], "shoeSize": 9}', "shoeSize"),
    ],
    ids=["truncated", "array", "unknown-field"],
)
async def test_import_bad_jsonl_lines_reject_their_row_only(
    line: str,
    complaint: str,
    cli: Run,
    server: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), line, wire_row(3)])

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / "customers.jsonl.rejects.jsonl")
    assert reject["line"] == 2
    assert complaint in json.dumps(reject)
    assert no_traceback(capsys.readouterr().err)
    assert {c["uniqueRefNo"] for c in server.created_customers} == {"IMP-0001", "IMP-0003"}


@pytest.mark.parametrize(("suffix", "line"), [(".csv", 3), (".jsonl", 2)])
async def test_import_a_row_that_is_not_utf8_is_rejected_by_its_line(
    suffix: str,
    line: int,
    cli: Run,
    server: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / f"customers{suffix}"
    if suffix == ".csv":
        write_csv(source, [csv_row(i) for i in (1, 2, 3)])
    else:
        write_jsonl(source, [wire_row(i) for i in (1, 2, 3)])
    # Row 2's legal name in Latin-1, as a spreadsheet export might have it.
    source.write_bytes(source.read_bytes().replace(b"Row 2 Traders", b"Caf\xe9 2 Traders"))

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / f"customers{suffix}.rejects.jsonl")
    assert reject["line"] == line
    assert "not UTF-8" in reject["reasons"][0]
    assert no_traceback(capsys.readouterr().err)
    assert {c["uniqueRefNo"] for c in server.created_customers} == {"IMP-0001", "IMP-0003"}


@pytest.mark.parametrize(
    ("name", "complaint"),
    [("missing.csv", "No such file"), ("customers.xlsx", "use a .csv or .jsonl file")],
    ids=["missing", "wrong-kind"],
)
def test_import_of_an_unusable_file_says_so_and_leaves_no_files_behind(
    name: str, complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / name
    if name.endswith(".xlsx"):
        source.write_bytes(b"PK\x03\x04")

    assert main(["customers", "import", "--fake", str(source)]) == 2

    err = capsys.readouterr().err
    assert complaint in err
    assert str(source) in err
    assert no_traceback(err)
    assert listing(tmp_path) == ([name] if source.exists() else [])


def test_import_of_a_missing_file_without_credentials_names_the_file_not_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["customers", "import", str(tmp_path / "missing.csv")]) == 2

    err = capsys.readouterr().err
    assert "missing.csv" in err
    assert "ENKASH_" not in err


def test_import_with_fake_runs_against_an_embedded_server_and_keeps_no_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 6)])

    assert main(["customers", "import", "--fake", str(source)]) == 0

    assert "5 created, 0 found, 0 rejected, 0 failed" in capsys.readouterr().err
    assert listing(tmp_path) == ["customers.jsonl"]


async def test_import_rerun_after_a_crash_looks_up_intended_refs_and_creates_only_the_rest(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [wire_row(i) for i in range(1, 11)]
    source = write_jsonl(tmp_path / "customers.jsonl", rows)
    # The crashed run: refs 1-7 were marked intended; EnKash has 1-5 but the run only
    # recorded 1-3 as done. Refs 6 and 7 never reached EnKash.
    ids = await create_directly(server, rows[:5])
    checkpoint = tmp_path / "customers.jsonl.checkpoint.sqlite"
    store = SqliteCheckpoint(checkpoint, target_of(server))
    await store.mark_intended([f"IMP-{i:04d}" for i in range(1, 8)])
    for i in range(1, 4):
        await store.mark_done(f"IMP-{i:04d}", ids[i - 1])
    await store.aclose()
    before = server.stats.created

    # --no-scan: only the checkpoint and the lookups tell what EnKash has.
    assert await cli("customers", "import", str(source), "--concurrency", "3", "--no-scan") == 0

    assert server.stats.created - before == 5  # refs 6 to 10
    for i in range(1, 11):
        stored_once(server, f"IMP-{i:04d}")
    assert "5 created, 5 found, 0 rejected, 0 failed" in capsys.readouterr().err
    assert checkpoint_states(checkpoint) == {f"IMP-{i:04d}": "done" for i in range(1, 11)}
    assert checkpoint_ids(checkpoint)[4:5] + checkpoint_ids(checkpoint)[3:4] == [ids[4], ids[3]]


async def test_import_rerun_after_a_checkpoint_write_fails_mid_import_duplicates_nothing(
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await start(latency={"create": 0.02})
    use(server, monkeypatch)
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in range(1, 21)])
    original = SqliteCheckpoint.mark_done
    calls = Counter[str]()

    async def disk_fills_up(self: SqliteCheckpoint, ref: str, customer_id: str | None) -> None:
        calls["done"] += 1
        if calls["done"] == 6:
            raise CheckpointError("database or disk is full", store=self.path)
        await original(self, ref, customer_id)

    monkeypatch.setattr(SqliteCheckpoint, "mark_done", disk_fills_up)
    assert await run("customers", "import", str(source), "--concurrency", "4") == 1
    assert "disk is full" in capsys.readouterr().err
    checkpoint = tmp_path / "customers.jsonl.checkpoint.sqlite"
    assert "intended" in checkpoint_states(checkpoint).values()
    for _ in range(500):  # let the creates the crashed run left in flight land
        if server.stats.in_flight == 0:
            break
        await asyncio.sleep(0.01)

    monkeypatch.setattr(SqliteCheckpoint, "mark_done", original)
    assert await run("customers", "import", str(source), "--concurrency", "4", "--no-scan") == 0

    for i in range(1, 21):
        stored_once(server, f"IMP-{i:04d}")
    assert server.stats.created == 20


async def test_import_rejects_a_row_without_unique_ref_no_unsent(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1, ref=False), wire_row(2)])

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = read_jsonl(tmp_path / "customers.jsonl.rejects.jsonl")
    assert (reject["line"], reject["outcome"]) == (1, "rejected")
    assert "uniqueRefNo" in reject["reasons"][0]
    assert [c["uniqueRefNo"] for c in server.created_customers] == ["IMP-0002"]


async def test_import_rerun_sends_again_a_row_enkash_refused(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(i) for i in (1, 2)])
    server.inject(Fault.status(400, error_type="VALIDATION_ERROR"), route="create", times=1)
    assert await cli("customers", "import", str(source), "--concurrency", "1") == 1
    assert [c["uniqueRefNo"] for c in server.created_customers] == ["IMP-0002"]

    assert await cli("customers", "import", str(source)) == 0

    assert sorted(c["uniqueRefNo"] for c in server.created_customers) == ["IMP-0001", "IMP-0002"]
    assert "1 created, 1 found, 0 rejected, 0 failed" in capsys.readouterr().err.splitlines()[-1]


async def test_import_a_ref_repeated_in_the_file_is_created_once(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = wire_row(1)
    edited["legalName"] = "Row 1 Traders (edited) Pvt Ltd"
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), wire_row(2), edited])

    assert await cli("customers", "import", str(source), "--concurrency", "8") == 0

    assert stored_once(server, "IMP-0001")["legalName"] == "Row 1 Traders Pvt Ltd"
    assert server.stats.created == 2
    assert "2 created, 1 found" in capsys.readouterr().err


async def test_import_rerun_replaces_the_rejects_file_and_removes_it_once_clean(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    bad = wire_row(2)
    bad["customerKeyContacts"][0]["mobile"] = "12"
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), bad])
    rejects = tmp_path / "customers.jsonl.rejects.jsonl"

    assert await cli("customers", "import", str(source)) == 1
    assert await cli("customers", "import", str(source)) == 1
    assert [r["line"] for r in read_jsonl(rejects)] == [2]

    write_jsonl(source, [wire_row(1), wire_row(2)])
    assert await cli("customers", "import", str(source)) == 0
    assert not rejects.exists()
    assert server.stats.created == 2


async def test_import_writes_rejects_and_checkpoint_where_told(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    bad = wire_row(2)
    del bad["customerKeyContacts"]
    source = write_jsonl(tmp_path / "customers.jsonl", [wire_row(1), bad])
    rejects, checkpoint = tmp_path / "refused.jsonl", tmp_path / "progress.sqlite"

    assert (
        await cli(
            "customers",
            "import",
            str(source),
            "--rejects",
            str(rejects),
            "--checkpoint",
            str(checkpoint),
        )
        == 1
    )

    assert [r["line"] for r in read_jsonl(rejects)] == [2]
    assert checkpoint_states(checkpoint) == {"IMP-0001": "done"}
    assert [n for n in listing(tmp_path) if "-" not in n] == [
        "customers.jsonl",
        "progress.sqlite",
        "refused.jsonl",
    ]


async def test_import_dry_run_creates_nothing_and_counts_what_it_would_do(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_directly(server, [wire_row(1)])
    bad = wire_row(4)
    del bad["legalName"]
    rows = [wire_row(1), wire_row(2), wire_row(3), bad, wire_row(2)]
    source = write_jsonl(tmp_path / "customers.jsonl", rows)
    before = server.stats.created

    assert await cli("customers", "import", str(source), "--dry-run") == 1

    assert server.stats.created == before
    assert server.stats.requests["create"] == 1  # create_directly's only
    err = capsys.readouterr().err
    assert "2 would be created, 2 already in EnKash, 1 rejected" in err
    assert not (tmp_path / "customers.jsonl.checkpoint.sqlite").exists()


# --------------------------------------------------------------------------- serve


async def test_serve_on_port_0_prints_a_url_that_answers_and_stops_on_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "enkash_async",
        "serve",
        "--port",
        "0",
        "--customers",
        "7",
        "--seed",
        "5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line, "serve printed nothing"
        info = json.loads(line)
        assert not info["url"].endswith(":0")
        credentials = DEFAULT_CREDENTIALS
        assert (info["username"], info["password"]) == (credentials.username, credentials.password)
        async with EnkashClient(info["url"], token=info["token"]) as client:
            found = await client.customers.search().collect()
        assert [c.customer_id for c in found] == [
            c["customerId"] for c in FakeEnkash(customers=7, seed=5).customers
        ]
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, errors.decode()
    assert info["url"] in errors.decode()
    assert no_traceback(errors.decode())


async def test_serve_prints_the_export_lines_that_connect_the_cli_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "enkash_async",
        "serve",
        "--port",
        "0",
        "--customers",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        await asyncio.wait_for(process.stdout.readline(), timeout=30)
        exports = {}
        while len(exports) < 5:
            line = (await asyncio.wait_for(process.stderr.readline(), timeout=30)).decode()
            assert line, "serve printed no export lines"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
        for name, value in exports.items():  # as the pasted lines would
            monkeypatch.setenv(name, value)

        assert await run("customers", "search", "--max-items", "1") == 0
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=30)


def _options(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {where}", a) for where, a in _options(sub))
        elif action.dest not in ("help", "version"):
            yield "/".join(action.option_strings) or action.dest, action


def test_every_option_says_what_it_does_and_its_default() -> None:
    from enkash_async.cli import _parser

    for where, action in _options(_parser()):
        assert action.help, f"{where} has no help"
        if action.default not in (None, False) and action.option_strings:
            assert "default" in action.help, f"{where} does not give its default"


def test_customers_help_describes_each_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["customers", "--help"])

    out = capsys.readouterr().out
    for action in ("create", "search", "import"):
        assert re.search(rf"^\s+{action}\s+\w+", out, re.MULTILINE), f"{action} undescribed"


def test_page_size_help_gives_its_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["customers", "search", "--help"])

    assert "1-5000" in capsys.readouterr().out


async def test_search_table_prints_each_page_as_it_arrives(
    start: Start, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = await start(customers=300)
    server.inject(Fault.latency(0.5), route="search")  # every page is slow
    use(server, monkeypatch)
    output = tmp_path / "table.txt"
    argv = ["customers", "search", "--format", "table", "--page-size", "100"]
    command = asyncio.ensure_future(run(*argv, "--output", str(output)))

    for _ in range(1000):  # bounded: 10 s
        if output.exists() and len(output.read_text(encoding="utf-8").splitlines()) > 100:
            break
        await asyncio.sleep(0.01)
    shown_early = not command.done()

    assert await command == 0
    assert shown_early, "the first page was not printed before the search ended"
    assert output.read_text(encoding="utf-8").rstrip().endswith("300 customers")


async def test_search_table_shows_an_empty_field_as_blank_and_counts_in_words(
    start: Start, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start(customers=0)
    use(server, monkeypatch)
    no_pan = {k: v for k, v in wire_row(1).items()}
    await create_directly(server, [no_pan])

    assert await run("customers", "search", "--format", "table") == 0

    out = capsys.readouterr().out
    assert "None" not in out
    assert out.rstrip().endswith("1 customer")


async def test_a_refused_login_counts_refusals_and_warns_of_the_lock(
    cli: Run,
    server: FakeEnkash,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ENKASH_PASSWORD", "wrong")

    assert await run("customers", "search") == 1
    first = capsys.readouterr().err
    assert await run("customers", "search") == 1
    second = capsys.readouterr().err

    assert "refusal 1 seen" in first
    assert "refusal 2 seen" in second
    assert "locks an account after 3 refused logins, so 1 more and EnKash locks" in second
    assert "ENKASH_PASSWORD" in second


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "70000"],
        ["serve", "--customers", "-1"],
        ["demo", "--fault-rate", "1.5"],
        ["demo", "--page-size", "5001"],
        ["demo", "--customers", "0"],
        ["customers", "search", "--fake", "--fake-customers", "-5"],
        ["customers", "search", "--fake", "--page-size", "lots"],
        ["customers", "import", "--fake", "x.csv", "--concurrency", "0"],
    ],
    ids=" ".join,
)
def test_out_of_range_flags_are_usage_errors_not_tracebacks(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}" in err
    assert no_traceback(err)


# --------------------------------------------------------------------------- configuration


def test_fake_runs_a_search_against_an_embedded_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["customers", "search", "--fake", "--fake-customers", "40"]) == 0

    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = FakeEnkash(customers=40).customers  # the same synthetic customers
    assert [c["customerId"] for c in exported] == [c["customerId"] for c in expected]


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (
            {},
            [
                "ENKASH_BASE_URL",
                "ENKASH_CLIENT_ID",
                "ENKASH_CLIENT_SECRET",
                "ENKASH_USERNAME",
                "ENKASH_PASSWORD",
            ],
        ),
        (
            {
                "ENKASH_BASE_URL": "https://api.example.test",
                "ENKASH_CLIENT_ID": "c",
                "ENKASH_PASSWORD": "p",
            },
            ["ENKASH_CLIENT_SECRET", "ENKASH_USERNAME"],
        ),
        ({"ENKASH_TOKEN": "t"}, ["ENKASH_BASE_URL"]),
    ],
    ids=["nothing", "half-the-credentials", "token-without-url"],
)
def test_missing_configuration_names_the_variables_and_exits_2(
    given: dict[str, str],
    missing: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in given.items():
        monkeypatch.setenv(name, value)

    assert main(["customers", "search"]) == 2

    err = capsys.readouterr().err
    named = set(re.findall(r"ENKASH_[A-Z_]+(?=: )", err))
    assert named == set(missing)
    assert "ENKASH_TOKEN" in err or "ENKASH_TOKEN" in given
    assert no_traceback(err)


async def test_a_token_from_the_environment_is_used_without_logging_in(
    server: FakeEnkash, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENKASH_BASE_URL", server.url)
    monkeypatch.setenv("ENKASH_TOKEN", server.token)

    assert await run("customers", "search", "--max-items", "3") == 0

    assert len(capsys.readouterr().out.splitlines()) == 3
    assert server.stats.requests["token"] == 0


async def test_base_url_flag_overrides_the_environment(
    cli: Run,
    server: FakeEnkash,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ENKASH_BASE_URL", "http://127.0.0.1:9")  # nothing listens there

    assert await cli("customers", "search", "--base-url", server.url, "--max-items", "2") == 0

    assert len(capsys.readouterr().out.splitlines()) == 2


SECRET_PASSWORD = "pw-Zq81-never-print-me"
SECRET_TOKEN = "tok-Xv93-never-print-me"
SECRET_CLIENT = "cs-Lm55-never-print-me"


@pytest.mark.parametrize(
    ("scenario", "exit_code"),
    [
        ("success", 0),
        ("wrong-password", 1),
        ("wrong-client-secret", 1),
        ("bad-token", 1),
        ("half-set", 2),
    ],
)
async def test_secrets_from_the_environment_are_never_echoed(
    scenario: str,
    exit_code: int,
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from enkash_async.auth import PasswordCredentials

    credentials = PasswordCredentials(
        client_id="cli-test",
        client_secret=SECRET_CLIENT,
        username="ops@example.test",
        password=SECRET_PASSWORD,
    )
    server = await start(customers=5, credentials=credentials)
    env = {
        "ENKASH_BASE_URL": server.url,
        "ENKASH_CLIENT_ID": "cli-test",
        "ENKASH_CLIENT_SECRET": SECRET_CLIENT,
        "ENKASH_USERNAME": "ops@example.test",
        "ENKASH_PASSWORD": SECRET_PASSWORD,
    }
    if scenario == "wrong-password":
        env["ENKASH_PASSWORD"] = SECRET_PASSWORD + "-typo"
    elif scenario == "wrong-client-secret":
        env["ENKASH_CLIENT_SECRET"] = SECRET_CLIENT + "-typo"
    elif scenario == "bad-token":
        env = {"ENKASH_BASE_URL": server.url, "ENKASH_TOKEN": SECRET_TOKEN}
    elif scenario == "half-set":
        del env["ENKASH_USERNAME"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    source = write_jsonl(tmp_path / "one.jsonl", [wire_row(1)])

    codes = [await run("customers", "search"), await run("customers", "import", str(source))]

    assert codes == [exit_code, exit_code]
    out, err = capfd.readouterr()
    files = b"".join((tmp_path / name).read_bytes() for name in listing(tmp_path))
    for secret in (SECRET_PASSWORD, SECRET_TOKEN, SECRET_CLIENT):
        assert secret not in out + err
        assert secret.encode() not in files
    assert no_traceback(err)


def test_a_closed_stdout_pipe_ends_the_command_quietly() -> None:
    command = [
        sys.executable,
        "-m",
        "enkash_async",
        "customers",
        "search",
        "--fake",
        "--fake-customers",
        "3000",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # the reader goes away, as `| head -1` does
        process.wait(timeout=30)
        errors = process.stderr.read().decode()

    assert json.loads(first)["customerId"]
    assert process.returncode == 141
    assert errors == ""
