"""Tokens, client secrets and passwords never show in a repr, a log record or an error."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from _support import BASE, LOGIN_PATH, SEARCH_PATH, FakeTransport, Sent, no_sleep, reply

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

    def reply(self, sent: Sent) -> Any:
        self.count += 1
        return reply({"access_token": ISSUED[self.count - 1], "expires_in": 900})


def disconnected() -> TransportError:
    """What the aiohttp transport raises when EnKash drops the connection."""
    return TransportError("connection failed while talking to EnKash: ServerDisconnectedError")


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
    transport = FakeTransport()
    transport.answer(LOGIN_PATH, reply({"error": "invalid_grant"}, 401))
    transport.answer(SEARCH_PATH, reply(REJECTED, 401))
    transport.answer(SEARCH_PATH, disconnected(), disconnected())
    transport.answer(SEARCH_PATH, *[reply(b"<html>Bad Gateway</html>", 502)] * 2)
    async with (
        EnkashClient(BASE, credentials=CREDS, retry=policy, transport=transport) as by_login,
        EnkashClient(BASE, token=STATIC_TOKEN, retry=policy, transport=transport) as by_token,
    ):
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
    transport = FakeTransport()
    transport.answer(LOGIN_PATH, reply(b"busy", 503))
    transport.answer(LOGIN_PATH, logins.reply, repeat=True)
    transport.answer(SEARCH_PATH, reply({}, 500), reply(REJECTED, 401), reply(PAGE))
    transport.answer(SEARCH_PATH, disconnected(), repeat=True)
    async with EnkashClient(BASE, credentials=CREDS, retry=policy, transport=transport) as client:
        await client.customers.search().collect()
        with pytest.raises(TransportError):
            await client.customers.search().collect()
    rejecting = FakeTransport().answer(LOGIN_PATH, reply({"error": "invalid_grant"}, 401))
    async with EnkashClient(BASE, credentials=CREDS, retry=policy, transport=rejecting) as client:
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
