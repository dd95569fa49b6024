"""Fault injection, per-route latency, max_in_flight, and the counters tests read."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from enkash_async.testing import FakeEnkash, Fault

if TYPE_CHECKING:
    from conftest import Api

pytestmark = pytest.mark.enkash_server(customers=30, seed=2)


async def test_status_fault_answers_that_status_with_an_error_envelope(api: Api) -> None:
    api.server.inject(Fault.status(503), route="search", times=1)

    reply = await api.search({})

    assert reply.status == 503
    assert reply.error["errorType"] == "SYSTEM_ERROR"
    assert reply.json["payload"] is None
    assert "Retry-After" not in reply.headers


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [
        (1, "1"),
        (2.0, "2"),
        (0.25, "0.25"),
        ("Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:00 GMT"),
        (datetime(2026, 10, 21, 7, 28, tzinfo=timezone.utc), "Wed, 21 Oct 2026 07:28:00 GMT"),
    ],
)
async def test_status_fault_sends_retry_after(api: Api, retry_after: Any, header: str) -> None:
    api.server.inject(Fault.status(429, retry_after=retry_after), route="search", times=1)

    reply = await api.search({})

    assert reply.status == 429
    assert reply.headers["Retry-After"] == header


async def test_times_limits_a_fault_to_the_next_n_requests(api: Api) -> None:
    injection = api.server.inject(Fault.status(500), route="search", times=2)

    statuses = [(await api.search({})).status for _ in range(4)]

    assert statuses == [500, 500, 200, 200]
    assert injection.fired == 2
    assert api.server.injections == ()


async def test_a_fault_only_hits_its_route(api: Api, valid_body: dict) -> None:
    api.server.inject(Fault.status(502), route="create")

    assert (await api.search({})).status == 200
    assert (await api.login()).status == 200
    assert (await api.create(valid_body)).status == 502


async def test_a_fault_without_route_hits_every_route(api: Api, valid_body: dict) -> None:
    api.server.inject(Fault.status(503))

    assert (await api.search({})).status == 503
    assert (await api.login()).status == 503
    assert (await api.create(valid_body)).status == 503


async def test_clear_faults_restores_normal_replies(api: Api) -> None:
    api.server.inject(Fault.status(503), route="search")
    assert (await api.search({})).status == 503

    api.server.clear_faults()

    assert (await api.search({})).status == 200


async def test_latency_fault_delays_then_answers_normally(api: Api) -> None:
    api.server.inject(Fault.latency(0.05), route="search", times=1)

    started = time.monotonic()
    reply = await api.search({})

    assert time.monotonic() - started >= 0.05
    assert reply.status == 200


async def test_disconnect_fault_cuts_the_body_and_the_client_sees_a_payload_error(
    api: Api,
) -> None:
    api.server.inject(Fault.disconnect(), route="search", times=1)

    with pytest.raises(aiohttp.ClientPayloadError):
        await api.search({}, params={"limit": 30})

    assert (await api.search({})).status == 200


async def test_disconnect_fault_on_create_stores_nothing(api: Api, valid_body: dict) -> None:
    api.server.inject(Fault.disconnect(), route="create", times=1)

    with pytest.raises(aiohttp.ClientPayloadError):
        await api.create(valid_body)

    assert api.server.find_by_unique_ref(valid_body["uniqueRefNo"]) == []


async def test_drop_fault_closes_the_connection_without_a_reply(api: Api) -> None:
    api.server.inject(Fault.drop(), route="search", times=1)

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.search({})


async def test_html_fault_answers_a_proxy_error_page(api: Api) -> None:
    api.server.inject(Fault.html(502), route="search", times=1)

    reply = await api.search({})

    assert reply.status == 502
    assert reply.headers["Content-Type"].startswith("text/html")
    assert b"<title>502 Bad Gateway</title>" in reply.body


async def test_truncated_fault_answers_200_with_json_cut_short(api: Api) -> None:
    api.server.inject(Fault.truncated(), route="search", times=1)

    reply = await api.search({})

    assert reply.status == 200
    assert reply.body.startswith(b'{"errorResponse":null,"payload":{"data":[')
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)


async def test_envelope_error_fault_answers_http_200_carrying_an_error(api: Api) -> None:
    api.server.inject(
        Fault.envelope_error("UNPROCESSABLE_REQUEST", response_code=422, message="nope"),
        route="search",
        times=1,
    )

    reply = await api.search({})

    assert reply.status == 200
    assert reply.json["response_code"] == 422
    assert reply.json["payload"] is None
    assert reply.error["errorType"] == "UNPROCESSABLE_REQUEST"
    assert reply.error["errorMessage"] == "nope"


async def test_token_invalid_fault_answers_http_200_with_code_117(api: Api) -> None:
    api.server.inject(Fault.token_invalid(), route="search", times=1)

    reply = await api.search({})

    assert reply.status == 200
    assert reply.json["response_code"] == 117
    assert reply.json["response_message"] == "Token is invalid."
    assert reply.error["errorType"] == "UNAUTHORIZED"
    assert (await api.search({})).status == 200  # the token itself still works


async def test_after_commit_status_stores_the_customer_then_answers_500(
    api: Api, valid_body: dict
) -> None:
    api.server.inject(Fault.after_commit(status=500), route="create", times=1)

    reply = await api.create(valid_body)

    assert reply.status == 500
    assert reply.error["errorType"] == "SYSTEM_ERROR"
    assert len(api.server.find_by_unique_ref(valid_body["uniqueRefNo"])) == 1
    assert api.server.stats.created == 1


async def test_after_commit_504_can_be_a_gateway_html_page(api: Api, valid_body: dict) -> None:
    api.server.inject(Fault.after_commit(status=504, html=True), times=1)

    reply = await api.create(valid_body)

    assert reply.status == 504
    assert b"504 Gateway Time" in reply.body
    assert len(api.server.find_by_unique_ref(valid_body["uniqueRefNo"])) == 1


async def test_after_commit_disconnect_stores_the_customer_and_cuts_the_reply(
    api: Api, valid_body: dict
) -> None:
    api.server.inject(Fault.after_commit(disconnect=True), route="create", times=1)

    with pytest.raises(aiohttp.ClientPayloadError):
        await api.create(valid_body)

    assert len(api.server.find_by_unique_ref(valid_body["uniqueRefNo"])) == 1


async def test_after_commit_delay_stores_before_a_client_timeout_fires(
    api: Api, valid_body: dict
) -> None:
    api.server.inject(Fault.after_commit(delay=0.3), route="create", times=1)

    with pytest.raises(asyncio.TimeoutError):
        await api.create(valid_body, timeout=aiohttp.ClientTimeout(total=0.1))

    assert len(api.server.find_by_unique_ref(valid_body["uniqueRefNo"])) == 1


async def test_a_retry_after_an_ambiguous_create_makes_a_duplicate(
    api: Api, valid_body: dict
) -> None:
    api.server.inject(Fault.after_commit(status=500), route="create", times=1)

    await api.create(valid_body)
    await api.create(valid_body)

    assert len(api.server.find_by_unique_ref(valid_body["uniqueRefNo"])) == 2


async def test_faults_other_than_after_commit_store_nothing(api: Api, valid_body: dict) -> None:
    for fault in (Fault.status(500), Fault.html(504), Fault.truncated(), Fault.envelope_error()):
        api.server.inject(fault, route="create", times=1)
        await api.create(valid_body)

    assert api.server.stored_count == 30
    assert api.server.stats.created == 0


async def _fault_pattern(seed: int, requests: int = 40) -> list[int]:
    async with FakeEnkash(seed=seed) as server, aiohttp.ClientSession() as http:
        server.inject(Fault.status(503), route="search", rate=0.3)
        statuses = []
        for _ in range(requests):
            async with http.post(
                server.url + "/api/v0/customer/search",
                json={},
                headers={"Authorization": f"Bearer {server.token}"},
            ) as response:
                statuses.append(response.status)
        return statuses


async def test_rate_faults_are_the_same_for_the_same_seed() -> None:
    first, second = await _fault_pattern(seed=5), await _fault_pattern(seed=5)

    assert first == second
    assert 3 <= first.count(503) <= 25


async def test_rate_faults_differ_for_another_seed() -> None:
    assert await _fault_pattern(seed=5) != await _fault_pattern(seed=6)


async def test_rate_with_times_stops_after_n_firings(api: Api) -> None:
    injection = api.server.inject(Fault.status(500), route="search", rate=0.5, times=3)

    statuses = [(await api.search({})).status for _ in range(40)]

    assert statuses.count(500) == 3
    assert injection.fired == 3


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.inject(Fault.status(500), route="purge"), "routes"),
        (lambda s: s.inject(Fault.status(500), rate=1.5), "rate"),
        (lambda s: s.inject(Fault.status(500), times=0), "times"),
        (lambda s: s.inject(Fault.after_commit(status=500), route="search"), "create"),
        (lambda s: Fault.after_commit(), "exactly one"),
        (lambda s: Fault.after_commit(status=500, disconnect=True), "exactly one"),
        (lambda s: Fault.disconnect(cut=1.0), "cut"),
    ],
)
async def test_bad_fault_arguments_raise_value_error(
    enkash_server: FakeEnkash, call: Any, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        call(enkash_server)


@pytest.mark.enkash_server(latency={"search": 0.05})
async def test_latency_option_delays_every_request_on_the_route(api: Api) -> None:
    started = time.monotonic()
    await api.search({})
    searched = time.monotonic() - started

    started = time.monotonic()
    await api.login()
    logged_in = time.monotonic() - started

    assert searched >= 0.05
    assert logged_in < 0.05


@pytest.mark.enkash_server(max_in_flight=2, latency={"search": 0.2})
async def test_max_in_flight_answers_429_beyond_the_limit(api: Api) -> None:
    replies = await asyncio.gather(*(api.search({}) for _ in range(6)))

    statuses = sorted(reply.status for reply in replies)
    assert statuses == [200, 200, 429, 429, 429, 429]
    limited = [reply for reply in replies if reply.status == 429]
    assert all(reply.headers["Retry-After"] == "1" for reply in limited)
    assert api.server.stats.rate_limited == 4
    assert api.server.stats.peak_in_flight == 3  # two sleeping, one being refused


async def test_counters_count_requests_logins_faults_and_creates(
    api: Api, valid_body: dict
) -> None:
    await api.login()
    await api.login(password="wrong")
    await api.create(valid_body)
    api.server.inject(Fault.html(502), route="search", times=1)
    await api.search({})
    await api.search({})

    stats = api.server.stats
    assert stats.requests == {"token": 2, "create": 1, "search": 2}
    assert stats.logins == 1
    assert stats.failed_logins == 1
    assert stats.created == 1
    assert stats.faults_injected == {"html": 1}
    assert stats.rate_limited == 0
    assert stats.in_flight == 0

    stats.reset()
    assert stats.requests == {} and stats.logins == 0


async def test_truncated_can_cut_anywhere_even_to_an_empty_body(api: Api) -> None:
    api.server.inject(Fault.truncated(cut=0.0), route="search", times=1)

    reply = await api.search({})

    assert reply.status == 200
    assert reply.body == b""
