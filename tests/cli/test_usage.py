"""The CLI's usage: every option's help, and out-of-range flags as usage errors."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest
from _cli import (
    no_traceback,
)

from enkash_async.cli import main


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
