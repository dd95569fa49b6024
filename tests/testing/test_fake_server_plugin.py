"""The pytest plugin: the enkash_server and enkash_client fixtures and their marker."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from enkash_async.testing import FakeEnkash


def _client_available() -> bool:
    try:
        from enkash_async import EnkashClient  # noqa: F401
    except Exception:  # the client may be mid-rewrite; its own tests report that
        return False
    return True


async def test_enkash_server_yields_a_started_empty_server(enkash_server: FakeEnkash) -> None:
    assert enkash_server.url.startswith("http://127.0.0.1:")
    assert enkash_server.stored_count == 0
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            enkash_server.url + "/api/v0/customer/search",
            json={},
            headers={"Authorization": f"Bearer {enkash_server.token}"},
        ) as response,
    ):
        assert response.status == 200


@pytest.mark.enkash_server(customers=5, seed=3, token_style="new")
async def test_the_marker_passes_its_keywords_to_fake_enkash(enkash_server: FakeEnkash) -> None:
    assert enkash_server.stored_count == 5
    assert enkash_server.seed == 3
    assert enkash_server.customers == FakeEnkash(customers=5, seed=3).customers


def test_the_marker_is_registered(pytestconfig: pytest.Config) -> None:
    markers = pytestconfig.getini("markers")
    assert any(line.startswith("enkash_server(") for line in markers)


@pytest.mark.slow
def test_importing_the_plugin_does_not_load_the_server() -> None:
    code = (
        "import sys, enkash_async.testing.pytest_plugin; "
        "sys.exit('enkash_async.testing._server' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.skipif(not _client_available(), reason="enkash_async.EnkashClient is not importable")
@pytest.mark.enkash_server(customers=25, seed=1)
async def test_enkash_client_talks_to_enkash_server(enkash_client: Any) -> None:
    found = [customer async for customer in enkash_client.customers.search(page_size=10)]

    assert len(found) == 25
