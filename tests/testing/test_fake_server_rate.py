"""The fake's hidden request-rate cap, its stats page, and the standard fault mix."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from enkash_async.testing import FakeEnkash, inject_fault_mix

if TYPE_CHECKING:
    from conftest import Api


@pytest.mark.enkash_server(rate_limit=10, rate_burst=1)
async def test_a_rate_limit_answers_429_to_requests_beyond_it(api: Api) -> None:
    replies = await asyncio.gather(*(api.search({}) for _ in range(5)))

    assert sorted(reply.status for reply in replies) == [200, 429, 429, 429, 429]
    assert api.server.stats.over_rate == 4
    assert api.server.stats.rate_limited == 4


@pytest.mark.enkash_server(rate_limit=10, rate_burst=1)
async def test_a_rate_limit_leaves_logins_alone(api: Api) -> None:
    replies = await asyncio.gather(*(api.login() for _ in range(3)))

    assert [reply.status for reply in replies] == [200, 200, 200]


def test_a_rate_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        FakeEnkash(rate_limit=0)


async def test_the_stats_page_counts_creates_and_duplicate_refs(
    api: Api, valid_body: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    await api.create(valid_body)
    await api.create(valid_body)

    async with http.get(api.server.url + "/_fake/stats") as reply:
        stats = await reply.json()

    assert stats["created"] == 2
    assert stats["stored"] == 2
    assert (stats["unique_refs"], stats["duplicate_refs"]) == (1, 1)
    assert stats["requests"]["create"] == 2
    assert stats["last_created_at"] >= stats["first_created_at"] > 0


async def test_the_fault_mix_fails_about_its_rate_of_creates_after_commit_included(
    api: Api, valid_body: dict[str, Any]
) -> None:
    inject_fault_mix(api.server, 0.5)

    for i in range(200):
        with contextlib.suppress(aiohttp.ClientError):  # a dropped or cut connection
            await api.create({**valid_body, "uniqueRefNo": f"ERP-{i}"})

    fired = api.server.stats.faults_injected
    assert 70 <= sum(fired.values()) <= 130
    assert fired["after_commit"] > 0 and fired["status"] > 0 and fired["drop"] > 0


def test_the_fault_mix_rate_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="rate"):
        inject_fault_mix(FakeEnkash(), 1.5)
