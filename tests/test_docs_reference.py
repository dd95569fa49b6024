"""Every public name is in the API reference: each name in the ``__all__`` of a public
package appears as a ``::: dotted.path.Name`` block on one of ``docs/reference/*.md``."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference"
PUBLIC_PACKAGES = ("enkash_async", "enkash_async.sync", "enkash_async.testing")
_BLOCK = re.compile(r"^::: (\S+)", re.MULTILINE)


def _documented_names() -> set[str]:
    return {
        path.rsplit(".", 1)[-1]
        for page in REFERENCE.glob("*.md")
        for path in _BLOCK.findall(page.read_text(encoding="utf-8"))
    }


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_public_name_of_the_package_is_in_the_reference(package: str) -> None:
    public = set(importlib.import_module(package).__all__)
    assert sorted(public - _documented_names()) == []


def test_every_reference_block_names_something_public() -> None:
    public = {
        name for package in PUBLIC_PACKAGES for name in importlib.import_module(package).__all__
    }
    allowed = public | {"pytest_plugin"}  # the plugin module is documented as a module
    assert sorted(_documented_names() - allowed) == []
