"""A token that cannot go into an ``Authorization`` header (CR, LF, NUL, ...) is refused
before anything is sent: a static one when the client is built, a login reply's as a
``LoginError``; one trailing newline, as a mounted secret file has, is stripped."""

from __future__ import annotations

from typing import Any

import pytest
from _hostile import Hostile, envelope
from aiohttp import web

from enkash_async import (
    EnkashClient,
    LoginError,
    PasswordCredentials,
    RetryPolicy,
    ValidationError,
)

PAGE = envelope({"data": [], "recordsCount": 0})


def answering(token: Any) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/oauth/token":
            return web.json_response({"access_token": token, "expires_in": 3600})
        return web.json_response(PAGE)

    return handler


@pytest.mark.parametrize(
    "token",
    ["abc\r\nX-Injected: 1", "abc\ndef", "ab\x00c", "abc\r", "abc\n\n", "\n", "ab c", "abc\x7f"],
    ids=[
        "crlf-inside",
        "lf-inside",
        "nul",
        "trailing-cr",
        "two-newlines",
        "only-newline",
        "space",
        "del",
    ],
)
def test_a_static_token_that_cannot_be_sent_is_refused_when_the_client_is_built(
    token: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        EnkashClient("https://api.enkash.test", token=token)
    assert caught.value.fields == ("token",)
    assert token.strip() not in str(caught.value) or not token.strip()


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
async def test_one_trailing_newline_of_a_static_token_is_stripped(ending: str) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers["Authorization"])
        return web.json_response(PAGE)

    async with (
        Hostile(handler) as server,
        EnkashClient(server.url, token="abc.def" + ending, retry=RetryPolicy.none()) as client,
    ):
        await client.customers.search().collect()
    assert seen == ["Bearer abc.def"]


def test_enkash_token_with_a_newline_inside_is_a_validation_error_naming_it() -> None:
    environ = {"ENKASH_BASE_URL": "https://api.enkash.test", "ENKASH_TOKEN": "abc\ndef"}
    with pytest.raises(ValidationError, match="line feed"):
        EnkashClient.from_env(environ)


async def test_enkash_token_read_from_a_mounted_secret_works() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers["Authorization"])
        return web.json_response(PAGE)

    async with Hostile(handler) as server:
        environ = {"ENKASH_BASE_URL": server.url, "ENKASH_TOKEN": "s3cret\n"}
        async with EnkashClient.from_env(environ, retry=RetryPolicy.none()) as client:
            await client.customers.search().collect()
    assert seen == ["Bearer s3cret"]


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "abc\n", "ab\x00c"])
async def test_a_login_reply_token_that_cannot_be_sent_is_a_login_error(token: str) -> None:
    async with Hostile(answering(token)) as server:
        client = EnkashClient(
            server.url,
            credentials=PasswordCredentials("client", "secret", "user", "password"),
            retry=RetryPolicy.none(),
        )
        async with client:
            with pytest.raises(LoginError, match="access_token"):
                await client.customers.search().collect()
            with pytest.raises(LoginError):  # and the login is not sent again
                await client.customers.search().collect()
    assert [r.path for r in server.received] == ["/oauth/token"]
