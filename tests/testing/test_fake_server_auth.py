"""Login (POST /oauth/token), bearer tokens, lockout, the envelope and request ids."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import TYPE_CHECKING

import pytest

from enkash_async.testing import FakeEnkash

if TYPE_CHECKING:
    from conftest import Api


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def test_login_with_the_servers_credentials_answers_an_old_style_token(api: Api) -> None:
    reply = await api.login()

    assert reply.status == 200
    assert set(reply.json) == {"access_token", "token_type", "expires_in"}
    assert reply.json["token_type"] == "bearer"
    assert reply.json["expires_in"] == 3600


@pytest.mark.enkash_server(token_style="new", token_ttl=120.0)
async def test_new_token_style_uses_camel_case_keys(api: Api) -> None:
    reply = await api.login()

    assert reply.status == 200
    assert set(reply.json) == {"accessToken", "tokenType", "expiresIn"}
    assert reply.json["expiresIn"] == 120


async def test_a_token_from_login_authorizes_searches(api: Api) -> None:
    token = (await api.login()).json["access_token"]

    assert (await api.search({}, token=token)).status == 200


async def test_wrong_password_is_refused_with_an_unauthorized_envelope(api: Api) -> None:
    reply = await api.login(password="not-the-password")

    assert reply.status == 401
    assert reply.json["payload"] is None
    assert reply.json["response_code"] != 0
    assert reply.error["errorType"] == "UNAUTHORIZED"
    assert reply.error["errorMessage"] == "Bad credentials"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"authorization": basic("fake-enkash-client", "wrong-secret")}, "Bad client credentials"),
        ({"authorization": "Basic !!!not-base64"}, "Full authentication is required"),
        ({"authorization": "Bearer something"}, "Full authentication is required"),
        ({"grant_type": "client_credentials"}, "Unsupported grant type"),
        ({"client_id": "another-client"}, "clientId"),
        ({"username": "someone.else@example.com"}, "Bad credentials"),
    ],
    ids=["client-secret", "malformed-basic", "not-basic", "grant-type", "client-id", "username"],
)
async def test_each_bad_login_part_is_refused_with_401(
    api: Api, change: dict[str, str], message: str
) -> None:
    reply = await api.login(**change)

    assert reply.status == 401
    assert reply.error["errorType"] == "UNAUTHORIZED"
    assert message in reply.error["errorMessage"]


async def test_three_failed_logins_lock_the_account_even_for_the_right_password(api: Api) -> None:
    for _ in range(3):
        assert (await api.login(password="wrong")).status == 401

    reply = await api.login()

    assert reply.status == 401
    assert "locked" in reply.error["errorMessage"]
    assert api.server.is_locked(api.server.credentials.username)


async def test_two_failed_logins_do_not_lock_and_a_success_resets_the_count(api: Api) -> None:
    for _ in range(2):
        await api.login(password="wrong")
    assert (await api.login()).status == 200

    for _ in range(2):
        await api.login(password="wrong")

    assert (await api.login()).status == 200


async def test_unlock_lets_a_locked_user_log_in_again(api: Api) -> None:
    for _ in range(3):
        await api.login(password="wrong")

    api.server.unlock()

    assert (await api.login()).status == 200


@pytest.mark.enkash_server(lockout_after=None)
async def test_lockout_can_be_disabled(api: Api) -> None:
    for _ in range(5):
        await api.login(password="wrong")

    assert (await api.login()).status == 200


async def test_a_request_without_a_token_gets_401_with_code_117(api: Api) -> None:
    reply = await api.search({}, token=None)

    assert reply.status == 401
    assert reply.json["response_code"] == 117
    assert reply.json["response_message"] == "Token is invalid."
    assert reply.json["payload"] is None
    assert reply.error["errorType"] == "UNAUTHORIZED"


@pytest.mark.parametrize("token", ["made-up-token", ""])
async def test_an_unknown_token_gets_401_with_code_117(api: Api, token: str) -> None:
    reply = await api.create({}, token=token)

    assert reply.status == 401
    assert reply.json["response_code"] == 117


async def test_a_token_stops_working_after_its_ttl(api: Api) -> None:
    token = api.server.issue_token(ttl=0.05)
    assert (await api.search({}, token=token)).status == 200

    await asyncio.sleep(0.06)

    reply = await api.search({}, token=token)
    assert reply.status == 401
    assert reply.json["response_code"] == 117


@pytest.mark.enkash_server(token_ttl=0.05)
async def test_token_ttl_applies_to_the_start_token(api: Api) -> None:
    await asyncio.sleep(0.06)

    assert (await api.search({})).status == 401


async def test_expire_tokens_invalidates_every_issued_token(api: Api) -> None:
    issued = api.server.issue_token()
    logged_in = (await api.login()).json["access_token"]

    api.server.expire_tokens()

    for token in (api.server.token, issued, logged_in):
        assert (await api.search({}, token=token)).status == 401


async def test_the_request_id_is_echoed_in_the_header_and_the_error(api: Api) -> None:
    reply = await api.search({}, token=None, headers={"X-Request-Id": "req-42"})

    assert reply.headers["X-Request-Id"] == "req-42"
    assert reply.error["requestId"] == "req-42"


async def test_a_request_id_is_generated_when_none_is_sent(api: Api) -> None:
    reply = await api.search({}, token=None)

    assert reply.headers["X-Request-Id"]
    assert reply.error["requestId"] == reply.headers["X-Request-Id"]


async def test_success_replies_echo_the_request_id_header(api: Api) -> None:
    reply = await api.search({}, headers={"X-Request-Id": "req-7"})

    assert reply.headers["X-Request-Id"] == "req-7"


async def test_error_envelope_has_every_documented_key(api: Api) -> None:
    reply = await api.search({}, token=None)

    assert set(reply.json) == {"errorResponse", "payload", "response_code", "response_message"}
    assert set(reply.error) == {
        "apiSubErrors",
        "errorMessage",
        "errorType",
        "requestId",
        "timestamp",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", reply.error["timestamp"])


async def test_unknown_paths_answer_a_404_envelope(api: Api) -> None:
    reply = await api.post("/api/v0/nothing", json={})

    assert reply.status == 404
    assert reply.error["errorType"] == "RECORD_NOT_FOUND"


async def test_credentials_can_be_chosen(api: Api) -> None:
    from enkash_async.auth import PasswordCredentials

    mine = PasswordCredentials("id", "secret", "me", "pw")
    form = {"username": "me", "password": "pw", "grant_type": "password", "clientId": "id"}
    async with (
        FakeEnkash(credentials=mine) as server,
        api.http.post(
            server.url + "/oauth/token", headers={"Authorization": basic("id", "secret")}, data=form
        ) as response,
    ):
        assert response.status == 200
