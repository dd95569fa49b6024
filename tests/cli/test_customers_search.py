"""``enkash-async customers search``: filters, order, the output formats and progress."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _cli import (
    RecordedBar,
    Run,
    Start,
    create_directly,
    no_traceback,
    read_jsonl,
    run,
    use,
    wire_row,
)

from enkash_async.cli import main
from enkash_async.testing import FakeEnkash, Fault


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


def test_fake_runs_a_search_against_an_embedded_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["customers", "search", "--fake", "--fake-customers", "40"]) == 0

    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = FakeEnkash(customers=40).customers  # the same synthetic customers
    assert [c["customerId"] for c in exported] == [c["customerId"] for c in expected]


@pytest.mark.slow
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
