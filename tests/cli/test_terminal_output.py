"""Text from EnKash is data wherever the CLI shows it: no control character or ANSI
escape from a reply reaches the terminal, and a table never reads it as markup."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from _cli import Run, create_directly

from enkash_async.cli import _ui
from enkash_async.testing import FakeEnkash, Fault

# Clears the screen, retitles the window, rings the bell, turns text red (C1 CSI), flips
# the text right-to-left, and starts a forged line.
HOSTILE = "Evil\x1b[2J\x1b]0;pwned\x07 \x9b31m Pvt\u202e Ltd\x7f\nerror: forged"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_customer(ref: str) -> dict[str, Any]:
    return {
        "uniqueRefNo": ref,
        "legalName": HOSTILE,
        "customerKeyContacts": [
            {"name": HOSTILE, "legalName": "Asha Rao", "mobile": "9800000001", "deleted": False}
        ],
    }


def shows_no_control_character(text: str) -> bool:
    return CONTROL.search(text) is None


async def test_a_search_table_shows_control_characters_of_a_name_escaped(
    cli: Run, server: FakeEnkash, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_directly(server, [hostile_customer("HOSTILE-1")])

    assert (
        await cli("customers", "search", "--unique-ref-no", "HOSTILE-1", "--format", "table") == 0
    )

    out = capsys.readouterr().out
    assert shows_no_control_character(out)
    assert "Evil\\x1b[2J" in out
    assert "error: forged" not in out.splitlines()


async def test_a_customer_printed_as_json_keeps_its_value_and_no_raw_control_character(
    cli: Run, server: FakeEnkash, capsys: pytest.CaptureFixture[str]
) -> None:
    (customer_id,) = await create_directly(server, [hostile_customer("HOSTILE-2")])

    assert await cli("customers", "get", customer_id) == 0

    out = capsys.readouterr().out
    assert shows_no_control_character(out)
    assert json.loads(out)["legalName"] == HOSTILE


async def test_a_search_as_json_lines_keeps_each_value_and_no_raw_control_character(
    cli: Run, server: FakeEnkash, capsys: pytest.CaptureFixture[str]
) -> None:
    await create_directly(server, [hostile_customer("HOSTILE-3")])

    assert await cli("customers", "search", "--unique-ref-no", "HOSTILE-3") == 0

    out = capsys.readouterr().out
    assert shows_no_control_character(out)
    (line,) = out.splitlines()
    assert json.loads(line)["legalName"] == HOSTILE


async def test_an_error_message_from_enkash_is_shown_on_one_line_escaped(
    cli: Run, server: FakeEnkash, capsys: pytest.CaptureFixture[str]
) -> None:
    server.inject(Fault.status(400, message=HOSTILE), route="search")

    assert await cli("customers", "get", "KC0000000000NONE") == 1

    err = capsys.readouterr().err
    assert shows_no_control_character(err)
    assert "Evil\\x1b[2J" in err
    assert not any(line.startswith("error: forged") for line in err.splitlines())


def test_a_table_shows_a_cell_holding_markup_as_it_is() -> None:
    out = io.StringIO()

    _ui.table("t", ["name"], [["[bold red]Acme[/] [link=http://x]y[/link]"]], out)

    assert "[bold red]Acme[/] [link=http://x]y[/link]" in out.getvalue()


def test_a_table_shows_control_characters_of_a_cell_escaped() -> None:
    out = io.StringIO()

    _ui.table("t", ["name"], [[HOSTILE]], out)

    assert shows_no_control_character(out.getvalue())


def test_terminal_text_escapes_every_control_character_and_keeps_the_rest() -> None:
    assert _ui.terminal_text("Añil\x1b[0m\t\u202e\n") == "Añil\\x1b[0m\\t\\u202e\\n"
    assert _ui.terminal_text("two\nlines", lines=True) == "two\nlines"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_a_csv_export_shown_on_a_terminal_has_its_control_characters_escaped(
    cli: Run, server: FakeEnkash, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_directly(server, [hostile_customer("HOSTILE-4")])
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)

    argv = ("customers", "search", "--unique-ref-no", "HOSTILE-4", "--format", "csv")
    assert await cli(*argv) == 0

    assert shows_no_control_character(terminal.getvalue().replace("\r\n", "\n"))  # CSV's ends
    assert "Evil\\x1b[2J" in terminal.getvalue()
