"""Tokens, client secrets and passwords never show in a repr, a log record or an error."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from _support import BASE, no_sleep
from aioresponses import CallbackResult, aioresponses

from enkash_async import (
    AuthenticationError,
    EnkashClient,
    EnkashError,
    LoginError,
    PasswordCredentials,
    RetryEvent,
    RetryPolicy,
    TransportError,
    ValidationError,
)

LOGIN = f"{BASE}/oauth/token"
SEARCH = re.compile(r"^https://api\.enkash\.test/api/v0/customer/search\?")

CLIENT_SECRET = "cs-Zq8Lw3Xv"
PASSWORD = "pw-Hn5Rt2Ky"
STATIC_TOKEN = "st-Jd4Mb9Qe"
ISSUED = ["at-Fg6Wp1Uc", "at-Vb7Nx0Sa"]
CREDS = PasswordCredentials(
    client_id="acme-client", client_secret=CLIENT_SECRET, username="ops@acme.in", password=PASSWORD
)
SECRETS = [
    CLIENT_SECRET,
    PASSWORD,
    STATIC_TOKEN,
    *ISSUED,
    base64.b64encode(f"acme-client:{CLIENT_SECRET}".encode()).decode(),
]
PAGE = {"payload": {"data": [{"customerId": "C1", "id": 1}], "recordsCount": 1}}
REJECTED = {"errorResponse": {"errorType": "UNAUTHORIZED", "errorMessage": "token expired"}}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def chain(error: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def assert_error_hides_secrets(error: BaseException) -> None:
    assert isinstance(error, EnkashError)
    assert_no_secret(repr(error))
    for link in chain(error):
        assert_no_secret(str(link))


class Logins:
    def __init__(self) -> None:
        self.count = 0

    def reply(self, url: Any, **kwargs: Any) -> CallbackResult:
        self.count += 1
        return CallbackResult(payload={"access_token": ISSUED[self.count - 1], "expires_in": 900})


# --------------------------------------------------------------------------- reprs


def test_credentials_repr_hides_the_client_secret_and_password() -> None:
    for text in (repr(CREDS), str(CREDS)):
        assert_no_secret(text)
        assert "acme-client" in text
        assert "ops@acme.in" in text


@pytest.mark.parametrize(
    "auth", [{"token": STATIC_TOKEN}, {"credentials": CREDS}], ids=["token", "credentials"]
)
def test_client_repr_hides_secrets(auth: dict[str, Any]) -> None:
    client = EnkashClient(BASE, **auth)
    assert_no_secret(repr(client))
    assert_no_secret(str(client))


def test_from_env_error_names_variables_but_not_values() -> None:
    env = {"ENKASH_CLIENT_SECRET": CLIENT_SECRET, "ENKASH_PASSWORD": PASSWORD}
    with pytest.raises(ValidationError) as info:
        EnkashClient.from_env(env)
    assert_error_hides_secrets(info.value)
    assert "ENKASH_USERNAME" in str(info.value)


# --------------------------------------------------------------------------- errors


async def test_errors_hide_secrets() -> None:
    errors: list[BaseException] = []
    policy = RetryPolicy(max_attempts=2, sleep=no_sleep)
    async with (
        EnkashClient(BASE, credentials=CREDS, retry=policy) as by_login,
        EnkashClient(BASE, token=STATIC_TOKEN, retry=policy) as by_token,
    ):
        with aioresponses() as m:
            m.post(LOGIN, status=401, payload={"error": "invalid_grant"})
            m.post(SEARCH, status=401, payload=REJECTED)
            m.post(SEARCH, exception=aiohttp.ServerDisconnectedError(), repeat=2)
            m.post(SEARCH, status=502, body="<html>Bad Gateway</html>", repeat=2)
            for client, expected in [
                (by_login, LoginError),
                (by_token, AuthenticationError),
                (by_token, TransportError),
                (by_token, EnkashError),
            ]:
                with pytest.raises(expected) as info:
                    await client.customers.search().collect()
                errors.append(info.value)
    assert len(errors) == 4
    for error in errors:
        assert_error_hides_secrets(error)


# --------------------------------------------------------------------------- logs


async def test_logs_hide_secrets_across_login_retries_and_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[RetryEvent] = []
    policy = RetryPolicy(sleep=no_sleep, on_retry=events.append)
    logins = Logins()
    async with EnkashClient(BASE, credentials=CREDS, retry=policy) as client:
        with aioresponses() as m:
            m.post(LOGIN, status=503, body="busy")
            m.post(LOGIN, callback=logins.reply, repeat=True)
            m.post(SEARCH, status=500, payload={})
            m.post(SEARCH, status=401, payload=REJECTED)
            m.post(SEARCH, payload=PAGE)
            m.post(SEARCH, exception=aiohttp.ServerDisconnectedError(), repeat=True)
            await client.customers.search().collect()
            with pytest.raises(TransportError):
                await client.customers.search().collect()
    async with EnkashClient(BASE, credentials=CREDS, retry=policy) as client:
        with aioresponses() as m:
            m.post(LOGIN, status=401, payload={"error": "invalid_grant"})
            with pytest.raises(LoginError):
                await client.customers.search().collect()
    assert logins.count == 2  # the login and the renewal both happened
    assert len(events) >= 3
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for record in caplog.records:
        assert_no_secret(record.getMessage())
        assert_no_secret(repr(record.args))
    assert_no_secret(caplog.text)
    for event in events:
        assert_no_secret(repr(event))
