"""The value parsers of the CLI's options: one module, one message per kind of value."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

import enkash_async.cli
from enkash_async.cli import _types as types
from enkash_async.cli import main

CLI = Path(enkash_async.cli.__file__).parent


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (types.positive, "1", 1),
        (types.count, "0", 0),
        (types.seed, "-3", -3),
        (types.page_size, "5000", 5000),
        (types.port, "0", 0),
        (types.fraction, "0.25", 0.25),
        (types.rate, "0.5", 0.5),
    ],
)
def test_a_value_in_range_is_parsed(parse: object, text: str, value: float) -> None:
    assert callable(parse)
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "text", "complaint"),
    [
        (types.positive, "0", "must be at least 1, got 0"),
        (types.positive, "two", "must be a whole number, got 'two'"),
        (types.count, "-1", "must be at least 0, got -1"),
        (types.seed, "1.5", "must be a whole number, got '1.5'"),
        (types.page_size, "5001", "must be from 1 to 5000, got 5001"),
        (types.port, "70000", "must be from 0 to 65535, got 70000"),
        (types.fraction, "2", "must be from 0 to 1, got 2"),
        (types.fraction, "nan", "must be a finite number, got nan"),
        (types.rate, "0", "must be above 0, got 0"),
        (types.rate, "inf", "must be a finite number, got inf"),
        (types.rate, "fast", "must be a number, got 'fast'"),
    ],
)
def test_a_value_out_of_range_is_refused_saying_what_it_must_be(
    parse: object, text: str, complaint: str
) -> None:
    assert callable(parse)
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{complaint}$"):
        parse(text)


def test_no_other_cli_module_parses_option_values() -> None:
    raisers = set()
    for source in CLI.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "ArgumentTypeError":
                raisers.add(source.name)
    assert raisers == {"_types.py"}


def test_a_bad_seed_is_a_usage_error_saying_so(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--seed", "many"])

    assert caught.value.code == 2
    assert "--seed: must be a whole number, got 'many'" in capsys.readouterr().err
