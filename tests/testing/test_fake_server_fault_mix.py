"""The fault mix on every route (after-commit included), its seed, unknown fields and the
413 envelope; and `enkash-async serve --fault-rate/--fault-seed/--accept-unknown-fields`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from enkash_async.testing import FakeEnkash, inject_fault_mix

if TYPE_CHECKING:
    from conftest import Api

pytestmark = pytest.mark.enkash_server(customers=120, seed=4)


async def _call(api: Api, method: str, path: str, **kwargs: Any) -> int | None:
    """The status of one raw request, None when the connection was dropped or cut."""
    headers = {"Authorization": f"Bearer {api.server.token}"}
    try:
        async with api.http.request(
            method, api.server.url + path, headers=headers, **kwargs
        ) as reply:
            await reply.read()
            return reply.status
    except aiohttp.ClientError:
        return None


def _ids(api: Api) -> list[str]:
    return [wire["customerId"] for wire in api.server.customers]


@pytest.mark.parametrize("route", ["activate", "deactivate", "update", "delete"])
async def test_the_fault_mix_fails_every_write_route_some_after_the_change_was_applied(
    api: Api, route: str
) -> None:
    inject_fault_mix(api.server, 1.0)
    applied_but_failed = 0
    for customer_id in _ids(api)[:100]:
        before = api.server.get_customer(customer_id)
        assert before is not None
        if route == "update":
            status = await _call(
                api, "PATCH", f"/api/v0/customer/{customer_id}", json={"address": "New road 1"}
            )
        elif route == "delete":
            status = await _call(api, "DELETE", f"/api/v0/customer/{customer_id}")
        else:
            status = await _call(api, "PUT", f"/api/v0/customer/{route}/{customer_id}")
        after = api.server.get_customer(customer_id)
        changed = {
            "update": after is not None and after["address"] == "New road 1",
            "delete": after is None,
            "activate": after is not None and after["modifiedOn"] != before["modifiedOn"],
            "deactivate": after is not None
            and after["active"] is False
            and after["modifiedOn"] != before["modifiedOn"],
        }[route]
        assert status != 200  # a rate of 1: every request fails
        applied_but_failed += changed
    fired = api.server.stats.faults_injected
    assert fired["after_commit"] == applied_but_failed
    assert 20 <= applied_but_failed <= 60  # two kinds of five are after-commit
    assert fired["status"] > 0 and fired["drop"] > 0


async def test_the_fault_mix_fails_searches_and_never_applies_a_change_on_them(api: Api) -> None:
    inject_fault_mix(api.server, 1.0)

    statuses = [await _call(api, "POST", "/api/v0/customer/search", json={}) for _ in range(30)]

    assert 200 not in statuses
    assert None in statuses and 500 in statuses and 503 in statuses
    assert api.server.stats.faults_injected["after_commit"] == 0


async def test_the_fault_mix_gives_the_login_only_a_503_a_client_may_retry(api: Api) -> None:
    inject_fault_mix(api.server, 1.0)

    statuses = {(await api.login()).status for _ in range(30)}

    assert statuses == {200, 503}


async def test_the_fault_seed_picks_the_faults_and_the_same_seed_repeats_them() -> None:
    async def statuses(fault_seed: int) -> list[int | None]:
        async with FakeEnkash(customers=5, seed=1, fault_seed=fault_seed) as server:
            inject_fault_mix(server, 0.5)
            async with aiohttp.ClientSession() as http:
                api = _RawApi(http, server)
                return [await api.search() for _ in range(40)]

    first, again, other = await statuses(8), await statuses(8), await statuses(9)

    assert first == again
    assert first != other


class _RawApi:
    def __init__(self, http: aiohttp.ClientSession, server: FakeEnkash) -> None:
        self.http, self.server = http, server

    async def search(self) -> int | None:
        headers = {"Authorization": f"Bearer {self.server.token}"}
        try:
            async with self.http.post(
                self.server.url + "/api/v0/customer/search", json={}, headers=headers
            ) as reply:
                await reply.read()
                return reply.status
        except aiohttp.ClientError:
            return None


async def test_the_fault_seed_defaults_to_the_server_seed() -> None:
    async with FakeEnkash(seed=3) as implied, FakeEnkash(seed=3, fault_seed=3) as given:
        for server in (implied, given):
            inject_fault_mix(server, 0.5)
        draws = [
            [injection.rng.random() for injection in server.injections]
            for server in (implied, given)
        ]
    assert draws[0] == draws[1]


@pytest.mark.enkash_server(strict=False)
async def test_a_lenient_fake_accepts_unknown_fields_as_spring_would(
    api: Api, valid_body: dict[str, Any]
) -> None:
    reply = await api.create({**valid_body, "erpNotes": "not in the schema"})

    assert reply.status == 200
    assert "erpNotes" not in reply.json["payload"]


async def test_a_strict_fake_refuses_unknown_fields_by_name(
    api: Api, valid_body: dict[str, Any]
) -> None:
    reply = await api.create({**valid_body, "erpNotes": "not in the schema"})

    assert reply.status == 400
    assert "erpNotes" in reply.sub_errors


@pytest.mark.enkash_server(max_body=2048)
async def test_a_body_over_the_limit_is_answered_413_with_enkashs_envelope(
    api: Api, valid_body: dict[str, Any]
) -> None:
    stored = api.server.stored_count

    reply = await api.create({**valid_body, "address": "x" * 4096})

    assert reply.status == 413
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json["payload"] is None
    assert reply.error["errorType"] == "CLIENT_REQUEST_ERROR"
    assert "2048 bytes" in reply.error["errorMessage"]
    assert reply.json["response_code"] == 413
    assert api.server.stored_count == stored


async def test_a_search_limit_over_5000_is_a_validation_envelope(api: Api) -> None:
    reply = await api.search({}, params={"limit": 5001})

    assert reply.status == 400
    assert reply.error["errorType"] == "VALIDATION_ERROR"
    assert "limit" in reply.sub_errors


def test_max_body_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body"):
        FakeEnkash(max_body=0)


async def _serve(*options: str) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "enkash_async",
        "serve",
        "--port",
        "0",
        "--customers",
        "20",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert line, "serve printed nothing"
    return process, json.loads(line)


async def _stop(process: asyncio.subprocess.Process) -> str:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    _, errors = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, errors.decode()
    return errors.decode()


async def test_serve_with_a_fault_rate_fails_requests_on_every_route_and_says_so() -> None:
    process, info = await _serve("--fault-rate", "1", "--fault-seed", "3")
    try:
        headers = {"Authorization": f"Bearer {info['token']}"}
        async with aiohttp.ClientSession() as http:
            statuses = []
            for path, method in [("/search", "POST"), ("/KC0000000000000A", "PATCH")] * 10:
                try:
                    async with http.request(
                        method, info["url"] + "/api/v0/customer" + path, json={}, headers=headers
                    ) as reply:
                        await reply.read()  # a reply cut after its headers fails here
                        statuses.append(reply.status)
                except aiohttp.ClientError:
                    statuses.append(None)
    finally:
        errors = await _stop(process)
    assert 200 not in statuses and 404 not in statuses
    assert "failing about 100% of requests on every route" in errors
    assert "fault seed 3" in errors


async def test_serve_accept_unknown_fields_ignores_them(valid_body: dict[str, Any]) -> None:
    process, info = await _serve("--accept-unknown-fields")
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                info["url"] + "/api/v0/customer",
                json={**valid_body, "erpNotes": "not in the schema"},
                headers={"Authorization": f"Bearer {info['token']}"},
            ) as reply,
        ):
            status = reply.status
    finally:
        await _stop(process)
    assert status == 200


async def test_stats_count_applied_changes_per_route_and_the_fields_each_patch_sent(
    api: Api, http: aiohttp.ClientSession
) -> None:
    first, second, third = _ids(api)[:3]
    await _call(api, "PATCH", f"/api/v0/customer/{first}", json={"address": "A road"})
    await _call(api, "PATCH", f"/api/v0/customer/{second}", json={"address": "B", "state": None})
    await _call(api, "PUT", f"/api/v0/customer/deactivate/{third}")
    await _call(api, "DELETE", f"/api/v0/customer/{third}")
    await _call(api, "DELETE", f"/api/v0/customer/{third}")  # 404: nothing applied

    async with http.get(api.server.url + "/_fake/stats") as reply:
        stats = await reply.json()

    assert stats["changed"] == {"update": 2, "deactivate": 1, "delete": 1}
    assert stats["patched_fields"] == {"address": 2, "state": 1}
    assert stats["requests"]["delete"] == 2
