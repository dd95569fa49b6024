"""FakeEnkashProcess: the fake EnKash as a process of its own, started, read and stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from enkash_async import EnkashClient, UsageError
from enkash_async.testing import FakeEnkash, FakeEnkashProcess, FakeEnkashProcessError

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and waitpid")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEnkashProcess]:
    """One process for the tests that only read from it."""
    with FakeEnkashProcess("--customers", "7", "--seed", "5") as running:
        yield running


async def _search(url: str, token: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + "/api/v0/customer/search",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


def _reaped(pid: int) -> bool:
    """Whether ``pid`` is no child of this process any more: exited and waited for."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


async def test_the_url_answers_a_search_with_the_ready_token(fake: FakeEnkashProcess) -> None:
    page = await _search(fake.url, fake.token)

    assert page["payload"]["recordsCount"] == 7
    assert page["payload"]["data"][0] == FakeEnkash(customers=7, seed=5).customers[0]


async def test_the_credentials_log_a_client_in(fake: FakeEnkashProcess) -> None:
    async with EnkashClient(fake.url, credentials=fake.credentials) as client:
        found = await client.customers.search().collect()

    assert len(found) == 7


async def test_stats_count_the_requests_served(fake: FakeEnkashProcess) -> None:
    before = fake.stats()["requests"].get("search", 0)

    await _search(fake.url, fake.token)

    after = fake.stats()
    assert after["requests"]["search"] == before + 1
    assert after["stored"] == 7


def test_environ_points_at_the_fake_and_drops_other_enkash_variables(
    fake: FakeEnkashProcess,
) -> None:
    base = {"PATH": "/bin", "ENKASH_CLIENT_SECRET": "real-secret", "ENKASH_BASE_URL": "x"}

    environ = fake.environ(base)

    assert environ == {"PATH": "/bin", "ENKASH_BASE_URL": fake.url, "ENKASH_TOKEN": fake.token}


def test_the_repr_names_no_secret(fake: FakeEnkashProcess) -> None:
    text = repr(fake)

    assert fake.url in text
    for secret in (fake.token, fake.info["client_secret"], fake.info["password"]):
        assert secret not in text


@posix_only
def test_leaving_the_with_block_stops_and_reaps_the_process() -> None:
    with FakeEnkashProcess() as fake:
        pid = fake.pid
        assert pid is not None and fake.returncode is None

    assert fake.returncode == 0  # SIGTERM: the fake shuts down cleanly
    assert _reaped(pid)


def test_stop_twice_is_harmless() -> None:
    fake = FakeEnkashProcess().start()
    fake.stop()
    status = fake.returncode

    fake.stop()

    assert status is not None and fake.returncode == status


def test_stop_before_start_does_nothing() -> None:
    fake = FakeEnkashProcess()

    fake.stop()

    assert fake.pid is None and fake.returncode is None


def test_a_runner_starts_once() -> None:
    with FakeEnkashProcess() as fake, pytest.raises(UsageError, match="starts once"):
        fake.start()


def test_a_process_that_exits_before_ready_is_a_typed_error_quoting_its_stderr() -> None:
    fake = FakeEnkashProcess("--customers", "many")

    with pytest.raises(FakeEnkashProcessError) as caught:
        fake.start()

    assert "exited with status 2 before it was ready" in str(caught.value)
    assert "invalid int value: 'many'" in str(caught.value)  # argparse's complaint
    assert fake.returncode == 2


def test_no_connection_line_in_time_is_a_typed_error_and_the_process_is_stopped() -> None:
    # No interpreter starts within a millisecond, let alone generates a million customers.
    fake = FakeEnkashProcess("--customers", "1000000", ready_timeout=0.001)

    with pytest.raises(FakeEnkashProcessError, match=r"no connection line within 0\.001s"):
        fake.start()

    assert fake.returncode is not None


@posix_only
def test_a_process_deaf_to_sigterm_is_killed_after_the_stop_timeout() -> None:
    fake = FakeEnkashProcess(stop_timeout=0.2).start()
    assert fake.pid is not None
    os.kill(fake.pid, signal.SIGSTOP)  # a stopped process leaves SIGTERM pending

    fake.stop()

    assert fake.returncode == -signal.SIGKILL


async def test_async_with_starts_and_stops_off_the_event_loop() -> None:
    async with FakeEnkashProcess("--customers", "2") as fake:
        page = await _search(fake.url, fake.token)

    assert page["payload"]["recordsCount"] == 2
    assert fake.returncode is not None


async def test_cancelling_an_async_start_leaves_no_process_running() -> None:
    fake = FakeEnkashProcess()

    async def enter() -> None:
        async with fake:
            await asyncio.sleep(3600)  # pragma: no cover (cancelled before)

    task = asyncio.create_task(enter())
    await asyncio.sleep(0)  # the start is under way in its thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert fake.pid is not None and fake.returncode is not None
