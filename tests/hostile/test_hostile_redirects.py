"""A redirect from EnKash (or anything posing as it) is never followed: any 3xx is an
``UnexpectedResponseError`` naming the status and the target host, and nothing, the
password and the customer least of all, is sent to the target."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from _hostile import Hostile
from _support import new_customer
from aiohttp import web

from enkash_async import (
    EnkashClient,
    EnkashError,
    PasswordCredentials,
    RetryPolicy,
    UnexpectedResponseError,
)
from enkash_async.errors import LoginError

STATUSES = [301, 302, 303, 307, 308]
NEW = new_customer("ERP-1")
CREDS = PasswordCredentials("client", "client-secret", "user", "hunter2-password")


async def _nothing(request: web.Request) -> web.StreamResponse:
    return web.json_response({"access_token": "stolen", "payload": {"customerId": "EVIL"}})


def redirect_to(target: Hostile, status: int) -> object:
    async def handler(request: web.Request) -> web.StreamResponse:
        # A different host name for the same loopback server: "elsewhere".
        return web.Response(status=status, headers={"Location": target.url + request.path})

    return handler


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("call", ["create", "search"])
async def test_a_redirect_from_the_api_is_refused_and_nothing_reaches_its_target(
    status: int, call: str
) -> None:
    async with (
        Hostile(_nothing, host="localhost") as elsewhere,
        Hostile(redirect_to(elsewhere, status)) as api,  # type: ignore[arg-type]
        EnkashClient(api.url, token="t", retry=RetryPolicy.none()) as client,
    ):
        with pytest.raises(EnkashError) as info:
            if call == "create":
                await client.customers.create(NEW)
            else:
                await client.customers.search().collect()
    error = info.value
    while not isinstance(error, UnexpectedResponseError):  # a create reports it as its cause
        assert error.__cause__ is not None
        error = error.__cause__  # type: ignore[assignment]
    assert error.status == status
    assert "localhost" in str(error)
    assert elsewhere.received == []


@pytest.mark.parametrize("status", STATUSES)
async def test_a_redirect_from_the_login_is_refused_and_the_password_goes_nowhere(
    status: int,
) -> None:
    async with (
        Hostile(_nothing, host="localhost") as elsewhere,
        Hostile(redirect_to(elsewhere, status)) as api,  # type: ignore[arg-type]
        EnkashClient(api.url, credentials=CREDS, retry=RetryPolicy.none()) as client,
    ):
        with pytest.raises(UnexpectedResponseError) as info:
            await client.customers.search().collect()
        with pytest.raises(LoginError):  # and it is not sent again
            await client.customers.search().collect()
        assert len(api.received) == 1
    assert info.value.status == status
    assert "localhost" in str(info.value)
    assert elsewhere.received == []
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("call", ["login", "create", "search"])
async def test_a_redirect_from_an_https_api_to_plain_http_is_refused(
    status: int, call: str, certificate: tuple[Path, Path]
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    auth: dict[str, Any] = {"credentials": CREDS} if call == "login" else {"token": "t"}
    async with (
        Hostile(_nothing) as elsewhere,  # http://127.0.0.1: another host, and no TLS
        Hostile(redirect_to(elsewhere, status), host="localhost", certificate=certificate) as api,  # type: ignore[arg-type]
        EnkashClient(api.url, ssl=trusting, retry=RetryPolicy.none(), **auth) as client,
    ):
        with pytest.raises(EnkashError) as info:
            if call == "create":
                await client.customers.create(NEW)
            else:
                await client.customers.search().collect()
    assert "127.0.0.1" in str(info.value)
    assert elsewhere.received == []
