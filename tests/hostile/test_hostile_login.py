"""Login: anything but an unambiguous success is a refusal, sent once per client (three
failed logins lock the account), and a token lifetime that cannot be used gets a default
while concurrent callers still share one login."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _support import (
    LOGIN_PATH,
    SEARCH_PATH,
    FakeTransport,
    no_sleep,
    ok,
    reply,
)

from enkash_async import EnkashClient, EnkashError, PasswordCredentials, RetryPolicy
from enkash_async.errors import LoginError

CREDS = PasswordCredentials("client", "secret", "user", "password")
EMPTY_PAGE = reply(ok({"data": [], "recordsCount": 0}))

REFUSALS: dict[str, Any] = {
    "200-response-code-1": reply({"response_code": 1, "response_message": "no"}),
    "400-unmapped": reply({"errorResponse": {"errorType": "SOMETHING_NEW"}}, 400),
    "401-unknown-error": reply({"errorResponse": {"errorType": "UNKNOWN_ERROR"}}, 401),
    "400-no-envelope": reply({"whatever": 1}, 400),
    "200-oauth-invalid-grant": reply({"error": "invalid_grant", "error_description": "Bad"}),
    "423-locked": reply({"message": "locked"}, 423),
    "200-not-json": reply(b"<html>login</html>"),
    "200-empty": reply(b""),
    "200-token-with-code-117": reply({"access_token": "t", "response_code": 117}),
    "200-token-with-error": reply(
        {"access_token": "t", "errorResponse": {"errorType": "UNAUTHORIZED"}}
    ),
}


def login_client(transport: FakeTransport) -> EnkashClient:
    return EnkashClient(
        "https://api.enkash.test",
        credentials=CREDS,
        transport=transport,
        retry=RetryPolicy(sleep=no_sleep),
    )


@pytest.mark.parametrize("refusal", REFUSALS, ids=list(REFUSALS))
async def test_a_login_reply_that_is_not_a_clear_success_is_sent_once_per_client(
    refusal: str,
) -> None:
    transport = FakeTransport().answer(LOGIN_PATH, REFUSALS[refusal], repeat=True)
    transport.answer(SEARCH_PATH, EMPTY_PAGE, repeat=True)
    async with login_client(transport) as client:
        for _ in range(25):
            with pytest.raises(EnkashError):
                await client.customers.search().collect()
        assert client.stats.logins == 1
    assert len(transport.to(LOGIN_PATH)) == 1
    assert transport.to(SEARCH_PATH) == []


async def test_after_a_refusal_every_later_call_raises_login_error() -> None:
    transport = FakeTransport().answer(LOGIN_PATH, REFUSALS["423-locked"], repeat=True)
    async with login_client(transport) as client:
        for _ in range(3):
            with pytest.raises(LoginError):
                await client.customers.search().collect()


async def test_a_server_failure_at_login_is_not_a_refusal() -> None:
    failure = reply({"errorResponse": {"errorType": "SYSTEM_ERROR"}}, 500)
    token = reply({"access_token": "tok", "expires_in": 3600})
    transport = FakeTransport().answer(LOGIN_PATH, failure, token)
    transport.answer(SEARCH_PATH, EMPTY_PAGE, repeat=True)
    async with login_client(transport) as client:
        with pytest.raises(EnkashError):
            await client.customers.search().collect()
        await client.customers.search().collect()
    assert len(transport.to(LOGIN_PATH)) == 2


@pytest.mark.parametrize("expires_in", [0, -5, float("nan"), "NaN", 1e-9, None, "soon", True])
async def test_an_unusable_token_lifetime_gets_the_default_and_one_login_is_shared(
    expires_in: Any,
) -> None:
    body = {"access_token": "tok"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    transport = FakeTransport().answer(LOGIN_PATH, reply(body), repeat=True)
    transport.answer(SEARCH_PATH, EMPTY_PAGE, repeat=True)
    async with login_client(transport) as client:
        await asyncio.gather(*(client.customers.search().collect() for _ in range(100)))
        await client.customers.search().collect()
    assert len(transport.to(LOGIN_PATH)) == 1
