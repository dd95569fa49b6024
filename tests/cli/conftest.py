"""Fixtures of the command-line tests: a FakeEnkash the CLI is pointed at, and recorded
progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from _cli import RecordedBar, Run, Start, run, use

from enkash_async.cli import _commands, _import
from enkash_async.testing import FakeEnkash


@pytest.fixture
async def server(start: Start) -> FakeEnkash:
    return await start(customers=200, seed=3)


@pytest.fixture
def cli(server: FakeEnkash, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run the CLI against ``server`` in a worker thread; returns the exit code."""
    use(server, monkeypatch)
    return run


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


@pytest.fixture(autouse=True)
def _without_the_callers_configuration(no_enkash_environment: None) -> None:
    """Every CLI test runs without the caller's ENKASH_* configuration or CLI state."""
