"""The EnKash seed pages' examples and documented rules, as this suite's JSON fixtures.

``tests/fixtures/seeds/`` holds what the tests need from EnKash's API pages (the example
request and replies, the documented patterns, enum values, body params and schema field
counts), written by ``tests/fixtures/extract_seeds.py`` from the captured pages, so a
fresh clone tests with nothing beside it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "seeds"


@cache
def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def fixture(name: str) -> Any:
    """A fresh copy of ``tests/fixtures/seeds/<name>`` (callers may change it)."""
    return copy.deepcopy(_load(name))


def rules() -> dict[str, Any]:
    """``patterns``, ``allowed_values``, ``body_params``, ``schema_field_counts``."""
    value: dict[str, Any] = fixture("rules.json")
    return value


def documented_patterns() -> dict[str, str]:
    """Wire field -> the regex its "Match pattern:" documents on the createCustomer pages."""
    patterns: dict[str, str] = rules()["patterns"]
    return patterns
