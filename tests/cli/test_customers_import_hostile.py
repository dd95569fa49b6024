"""``customers import`` and ``customers create --json`` on hostile files: one bad row is
that row's rejection (with its line and its uniqueRefNo), the rest are imported, and a
rerun goes past it; what is not a regular file, or is too large, is refused unread."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _cli import Run, Start, no_traceback, wire_row

from enkash_async.sync._sources import MAX_DOCUMENT_BYTES
from enkash_async.testing import FakeEnkash


@pytest.fixture
async def server(start: Start) -> FakeEnkash:
    return await start(customers=0)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def rejects(path: Path) -> list[dict[str, Any]]:
    text = path.with_name(path.name + ".rejects.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def with_bad_line(bad: str, at: int = 31, count: int = 60) -> list[str]:
    lines = [json.dumps(wire_row(i)) for i in range(1, count + 1)]
    lines[at - 1] = bad
    return lines


DEEP_LINE = "[" * 100_000 + "]" * 100_000
DEEP_VALUE = json.dumps(wire_row(31))[:-1] + ', "address": ' + DEEP_LINE + "}"
HUGE_NUMBER = json.dumps(wire_row(31))[:-1] + ', "pinCode": ' + "9" * 5000 + "}"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (DEEP_LINE, "nested too deeply"),
        (DEEP_VALUE, "nested too deeply"),
        (HUGE_NUMBER, "more than 100 digits"),
    ],
    ids=["100000-deep-line", "100000-deep-value", "5000-digit-number"],
)
async def test_a_hostile_jsonl_line_is_rejected_and_every_other_row_is_imported(
    bad: str,
    reason: str,
    cli: Run,
    server: FakeEnkash,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = write_lines(tmp_path / "customers.jsonl", with_bad_line(bad))

    assert await cli("customers", "import", str(source)) == 1

    assert server.stats.created == 59
    (reject,) = rejects(source)
    assert reject["line"] == 31
    assert any(reason in text for text in reject["reasons"])
    assert no_traceback(capsys.readouterr().err)

    assert await cli("customers", "import", str(source)) == 1  # a rerun goes past it
    assert server.stats.created == 59
    assert "0 created, 0 updated, 59 unchanged, 1 rejected" in capsys.readouterr().err


async def test_a_csv_column_of_3001_dotted_parts_rejects_its_rows_and_imports_the_rest(
    cli: Run, server: FakeEnkash, tmp_path: Path
) -> None:
    deep = ".".join(["address"] + ["a"] * 3000)
    header = "uniqueRefNo,legalName,customerKeyContacts.0.name,customerKeyContacts.0.legalName,"
    header += f"customerKeyContacts.0.mobile,customerKeyContacts.0.deleted,{deep}"
    lines = [header]
    for i in range(1, 21):
        lines.append(f"IMP-{i:04d},Firm {i},Asha,Asha Rao,98{i:08d},false,{'x' if i == 5 else ''}")
    source = tmp_path / "customers.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert await cli("customers", "import", str(source)) == 1

    assert server.stats.created == 19
    (reject,) = rejects(source)
    assert reject["line"] == 6
    assert "3001 dotted parts" in reject["reasons"][0]


async def test_a_rejected_row_is_listed_with_the_unique_ref_no_it_has(
    cli: Run, tmp_path: Path
) -> None:
    bad = dict(wire_row(3), pinCode="not a pin code")
    lines = [json.dumps(wire_row(1)), json.dumps(wire_row(2)), json.dumps(bad)]
    source = write_lines(tmp_path / "customers.jsonl", lines)

    assert await cli("customers", "import", str(source)) == 1

    (reject,) = rejects(source)
    assert (reject["line"], reject["uniqueRefNo"]) == (3, "IMP-0003")


async def test_an_empty_csv_is_an_error_saying_there_are_no_rows(
    cli: Run, server: FakeEnkash, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "customers.csv"
    source.write_bytes(b"")

    assert await cli("customers", "import", str(source)) == 1

    assert "no rows" in capsys.readouterr().err
    assert server.stats.logins == 0  # found before anything was sent


def cli_process(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI as a process of its own, with 1 GiB of memory and a minute at most: what it
    must refuse unread would otherwise fill the memory or block forever."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run(
        [sys.executable, "-m", "enkash_async", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        preexec_fn=limit_memory,
    )


def fake_environment(server: FakeEnkash) -> dict[str, str]:
    return {**os.environ, "ENKASH_BASE_URL": server.url, "ENKASH_TOKEN": "unused"}


async def test_a_fifo_given_to_import_is_refused_unread(server: FakeEnkash, tmp_path: Path) -> None:
    fifo = tmp_path / "customers.jsonl"
    os.mkfifo(fifo)

    done = await asyncio.to_thread(
        cli_process, "customers", "import", str(fifo), env=fake_environment(server)
    )

    assert done.returncode == 2, done.stderr
    assert "not a regular file (a FIFO)" in done.stderr


async def test_a_device_given_to_create_json_is_refused_unread(
    server: FakeEnkash, tmp_path: Path
) -> None:
    zero = tmp_path / "customer.json"
    zero.symlink_to("/dev/zero")

    done = await asyncio.to_thread(
        cli_process, "customers", "create", "--json", str(zero), env=fake_environment(server)
    )

    assert done.returncode == 2, done.stderr
    assert "not a regular file (a character device)" in done.stderr


async def test_a_json_document_over_the_limit_is_refused_naming_it(
    cli: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    large = tmp_path / "customer.json"
    large.write_text(json.dumps(dict(wire_row(1), address="x" * MAX_DOCUMENT_BYTES)))

    assert await cli("customers", "create", "--json", str(large)) == 2

    assert f"larger than {MAX_DOCUMENT_BYTES:,} bytes" in capsys.readouterr().err


async def test_a_json_document_nested_100000_deep_is_refused_without_a_traceback(
    cli: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "customer.json"
    deep.write_text(DEEP_LINE)

    assert await cli("customers", "create", "--json", str(deep)) == 2

    err = capsys.readouterr().err
    assert "nested too deeply" in err
    assert no_traceback(err)
