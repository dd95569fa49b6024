"""Every Python block of README.md and of the docs/ pages runs as written against a fake
EnKash.

A block runs with top-level ``await`` (as in a notebook or ``python -m asyncio``) and the
``ENKASH_*`` variables of a fresh fake server set, as a reader would have them set. A
README block stands alone; a docs page's blocks run in order, sharing their names, as a
reader follows the page; a block calling ``asyncio.run`` is a script, run as a process.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _fake_env import login_environment

from enkash_async import EnkashError
from enkash_async.testing import FakeEnkash

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC_PAGES = sorted((ROOT / "docs").rglob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def code_blocks(text: str, language: str) -> list[tuple[int, str]]:
    """(first line number, source) of each fenced block in ``language``."""
    return [
        (text.count("\n", 0, match.start(2)) + 1, match.group(2))
        for match in FENCE.finditer(text)
        if match.group(1) == language
    ]


PYTHON_BLOCKS = code_blocks(README.read_text(encoding="utf-8"), "python")


async def run_block(
    line: int, source: str, page: Path = README, namespace: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run ``source`` as ``page`` line ``line`` onwards; return the names it set."""
    padded = "\n" * (line - 1) + source  # tracebacks point at the page's lines
    code = compile(padded, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace = {"__name__": "__doc_block__"} if namespace is None else namespace
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result
    return namespace


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeEnkash]:
    async with FakeEnkash(customers=30, seed=11) as fake:
        monkeypatch.delenv("ENKASH_TOKEN", raising=False)
        for name, value in login_environment(fake).items():
            monkeypatch.setenv(name, value)
        yield fake


def test_the_readme_has_python_blocks_to_run() -> None:
    assert len(PYTHON_BLOCKS) >= 2


@pytest.mark.parametrize(
    ("line", "source"), PYTHON_BLOCKS, ids=[f"line{n}" for n, _ in PYTHON_BLOCKS]
)
async def test_readme_block_runs_against_the_fake_server(
    server: FakeEnkash, line: int, source: str
) -> None:
    before = server.stored_count
    await run_block(line, source)
    creates = source.count("customers.create") + source.count("customers.upsert")
    assert (server.stored_count > before) == (creates > 0)


async def test_the_quickstart_creates_every_erp_row_once(server: FakeEnkash) -> None:
    line, source = next((n, s) for n, s in PYTHON_BLOCKS if "rows_from_erp" in s)
    namespace = await run_block(line, source)
    refs = [row.unique_ref_no for row in namespace["rows_from_erp"]()]
    assert [len(server.find_by_unique_ref(ref)) for ref in refs] == [1] * len(refs)


async def test_the_quickstart_run_twice_stores_each_customer_once(server: FakeEnkash) -> None:
    line, source = next((n, s) for n, s in PYTHON_BLOCKS if "rows_from_erp" in s)
    await run_block(line, source)
    namespace = await run_block(line, source)
    refs = ["ERP-000042", *(row.unique_ref_no for row in namespace["rows_from_erp"]())]
    assert [len(server.find_by_unique_ref(ref)) for ref in refs] == [1] * len(refs)


async def test_the_notebook_block_fills_a_dataframe_and_closes_its_client(
    server: FakeEnkash,
) -> None:
    line, source = next((n, s) for n, s in PYTHON_BLOCKS if "aclose()" in s)
    namespace = await run_block(line, source)
    assert len(namespace["customers"]) == server.stored_count
    with pytest.raises(EnkashError, match="closed"):
        await namespace["client"].customers.search(max_items=1).first()


async def run_script(page: Path, line: int, source: str) -> None:
    """Run a script block as ``python -c`` in this environment; fail with its stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        source,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, f"{page.name}:{line}: {err.decode()}"


DOC_BLOCKS = {page: code_blocks(page.read_text(encoding="utf-8"), "python") for page in DOC_PAGES}
DOC_PAGES_WITH_PYTHON = [page for page, blocks in DOC_BLOCKS.items() if blocks]


@pytest.mark.slow
@pytest.mark.parametrize("page", DOC_PAGES_WITH_PYTHON, ids=lambda page: page.name)
async def test_docs_page_blocks_run_in_order_against_the_fake_server(
    server: FakeEnkash, page: Path
) -> None:
    namespace: dict[str, Any] = {"__name__": "__doc_block__"}
    for line, source in DOC_BLOCKS[page]:
        if "asyncio.run(" in source:
            await run_script(page, line, source)
        else:
            await run_block(line, source, page, namespace)
    for name, function in list(namespace.items()):  # a test the page shows, with no fixtures
        if name.startswith("test_") and not inspect.signature(function).parameters:
            await function()


def test_the_docs_have_python_blocks_to_run() -> None:
    assert {page.name for page in DOC_PAGES_WITH_PYTHON} >= {"index.md", "testing.md"}
