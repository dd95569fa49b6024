"""Bearer tokens: static, or from a password login that is cached, renewed and never
retried when EnKash rejects it."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import pytest
from _support import BASE, LOGIN_PATH, SEARCH_PATH, FakeTransport, Sent, no_sleep, reply

from enkash_async import (
    AuthenticationError,
    EnkashClient,
    LoginError,
    PasswordCredentials,
    RetryPolicy,
    ValidationError,
)
from enkash_async._auth import PasswordLogin

LOGIN, SEARCH = LOGIN_PATH, SEARCH_PATH
CREDS = PasswordCredentials(
    client_id="acme-client", client_secret="s3cr3t-client", username="ops@acme.in", password="pw!"
)


POLICY = RetryPolicy(sleep=no_sleep)


def ok(payload: Any) -> dict[str, Any]:
    return {"errorResponse": None, "payload": payload, "response_code": 0}


PAGE = ok({"data": [{"customerId": "C1", "id": 1}], "recordsCount": 1})
REJECTED = {"errorResponse": {"errorType": "UNAUTHORIZED", "errorMessage": "token expired"}}


def bearer(sent: Sent) -> str:
    return sent.headers["Authorization"]


def calls(transport: FakeTransport, path: str) -> list[Sent]:
    return transport.to(path)


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


async def let_others_run() -> None:
    """Yield to the event loop a few times (the fake transport otherwise never suspends)."""
    for _ in range(5):
        await asyncio.sleep(0)


class Logins:
    """A login endpoint handing out tok-1, tok-2, … and counting requests.

    It yields to the loop before answering, so concurrent callers really overlap.
    """

    def __init__(self, expires_in: float = 3600) -> None:
        self.issued: list[str] = []
        self.expires_in = expires_in

    async def reply(self, sent: Sent) -> Any:
        await let_others_run()
        self.issued.append(f"tok-{len(self.issued) + 1}")
        return reply({"access_token": self.issued[-1], "expires_in": self.expires_in})


@pytest.fixture
def client_options() -> dict[str, Any]:
    return {"credentials": CREDS}  # logs in, instead of fake_client's static token


async def search(client: EnkashClient) -> list[Any]:
    return await client.customers.search(page_size=10).collect()


# --------------------------------------------------------------------------- static token


async def test_static_token_is_sent_as_bearer(transport: FakeTransport) -> None:
    async with EnkashClient(BASE, token="static-abc", retry=POLICY, transport=transport) as client:
        transport.answer(SEARCH, reply(PAGE))
        await search(client)
    assert [bearer(c) for c in calls(transport, SEARCH)] == ["Bearer static-abc"]


async def test_rejected_static_token_raises_without_a_login(transport: FakeTransport) -> None:
    async with EnkashClient(BASE, token="static-abc", retry=POLICY, transport=transport) as client:
        transport.answer(SEARCH, reply(REJECTED, 401), repeat=True)
        with pytest.raises(AuthenticationError):
            await search(client)
    assert len(calls(transport, SEARCH)) == 1
    assert calls(transport, LOGIN) == []


# --------------------------------------------------------------------------- login


async def test_password_login_posts_the_form_with_basic_auth(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(LOGIN, Logins().reply)
    transport.answer(SEARCH, reply(PAGE))
    await search(client)
    (login,) = calls(transport, LOGIN)
    expected_basic = base64.b64encode(b"acme-client:s3cr3t-client").decode()
    assert login.headers["Authorization"] == f"Basic {expected_basic}"
    assert login.form == {
        "username": "ops@acme.in",
        "password": "pw!",
        "grant_type": "password",
        "clientId": "acme-client",
    }
    assert login.body is None  # a form, not JSON
    assert [bearer(c) for c in calls(transport, SEARCH)] == ["Bearer tok-1"]


@pytest.mark.parametrize(
    "login_reply",
    [
        {"access_token": "the-token", "expires_in": 3600},
        {"accessToken": "the-token", "expiresIn": "3600"},
        ok({"accessToken": "the-token", "expiresIn": 3600}),
    ],
    ids=["snake", "camel", "in-envelope"],
)
async def test_login_reply_spellings_are_accepted(
    client: EnkashClient, login_reply: dict[str, Any], transport: FakeTransport
) -> None:
    transport.answer(LOGIN, reply(login_reply))
    transport.answer(SEARCH, reply(PAGE))
    await search(client)
    assert [bearer(c) for c in calls(transport, SEARCH)] == ["Bearer the-token"]


async def test_token_is_cached_across_calls(client: EnkashClient, transport: FakeTransport) -> None:
    logins = Logins()
    transport.answer(LOGIN, logins.reply, repeat=True)
    transport.answer(SEARCH, reply(PAGE), repeat=True)
    for _ in range(3):
        await search(client)
    assert logins.issued == ["tok-1"]
    assert {bearer(c) for c in calls(transport, SEARCH)} == {"Bearer tok-1"}
    assert client.stats.logins == 1


async def test_token_is_renewed_shortly_before_it_expires(transport: FakeTransport) -> None:
    clock = FakeClock()
    logins = Logins(expires_in=3600)
    provider = PasswordLogin(CREDS, transport, retry=POLICY, refresh_margin=60, clock=clock)
    try:
        transport.answer(LOGIN, logins.reply, repeat=True)
        assert await provider.token() == "tok-1"
        clock.now += 3600 - 61  # still more than the margin left
        assert await provider.token() == "tok-1"
        clock.now += 2  # inside the margin, before expiry
        assert await provider.token() == "tok-2"
    finally:
        await transport.aclose()
    assert len(logins.issued) == 2


async def test_token_shorter_lived_than_the_margin_is_still_reused(
    transport: FakeTransport,
) -> None:
    clock = FakeClock()
    logins = Logins(expires_in=30)
    provider = PasswordLogin(CREDS, transport, retry=POLICY, refresh_margin=60, clock=clock)
    try:
        transport.answer(LOGIN, logins.reply, repeat=True)
        tokens = [await provider.token() for _ in range(5)]
        clock.now += 31
        tokens.append(await provider.token())
    finally:
        await transport.aclose()
    assert tokens == ["tok-1"] * 5 + ["tok-2"]


async def test_concurrent_calls_on_an_expired_token_log_in_once(transport: FakeTransport) -> None:
    clock = FakeClock()
    logins = Logins(expires_in=600)
    provider = PasswordLogin(CREDS, transport, retry=POLICY, clock=clock)
    try:
        transport.answer(LOGIN, logins.reply, repeat=True)
        assert await provider.token() == "tok-1"
        clock.now += 600  # expired
        tokens = await asyncio.gather(*(provider.token() for _ in range(100)))
    finally:
        await transport.aclose()
    assert set(tokens) == {"tok-2"}
    assert len(logins.issued) == 2


def _accept_only(valid: Callable[[], str], rejected: dict[str, Any]) -> Any:
    def answer(sent: Sent) -> Any:
        if sent.headers["Authorization"] == f"Bearer {valid()}":
            return reply(PAGE)
        return reply(rejected["body"], rejected.get("status", 200))

    return answer


@pytest.mark.parametrize(
    "rejection",
    [
        {"status": 401, "body": REJECTED},
        {"body": {"response_code": 117, "response_message": "Invalid token"}},
    ],
    ids=["http-401", "response-code-117"],
)
async def test_rejected_token_is_renewed_once_and_the_call_replayed(
    client: EnkashClient, rejection: dict[str, Any], transport: FakeTransport
) -> None:
    logins = Logins()
    transport.answer(LOGIN, logins.reply, repeat=True)
    transport.answer(SEARCH, _accept_only(lambda: "tok-2", rejection), repeat=True)
    found = await search(client)
    assert len(found) == 1
    assert logins.issued == ["tok-1", "tok-2"]
    assert [bearer(c) for c in calls(transport, SEARCH)] == ["Bearer tok-1", "Bearer tok-2"]


async def test_renewal_keeps_the_request_id(client: EnkashClient, transport: FakeTransport) -> None:
    transport.answer(LOGIN, Logins().reply, repeat=True)
    transport.answer(SEARCH, reply(REJECTED, 401))
    transport.answer(SEARCH, reply(PAGE))
    await search(client)
    ids = [c.request_id for c in calls(transport, SEARCH)]
    assert len(ids) == 2
    assert ids[0] == ids[1]


async def test_second_rejection_after_renewal_raises(
    client: EnkashClient, transport: FakeTransport
) -> None:
    logins = Logins()
    transport.answer(LOGIN, logins.reply, repeat=True)
    transport.answer(SEARCH, reply(REJECTED, 401), repeat=True)
    with pytest.raises(AuthenticationError) as info:
        await search(client)
    assert not isinstance(info.value, LoginError)
    assert len(logins.issued) == 2
    assert len(calls(transport, SEARCH)) == 2


async def test_hundred_concurrent_calls_rejected_together_log_in_once(
    client: EnkashClient, transport: FakeTransport
) -> None:
    logins = Logins()
    revoked: set[str] = set()
    refused: list[str] = []
    all_refused = asyncio.Event()

    async def answer(sent: Sent) -> Any:
        token = sent.headers["Authorization"].removeprefix("Bearer ")
        if token in logins.issued and token not in revoked:
            return reply(PAGE)
        refused.append(token)
        position = len(refused)
        if position == 100:
            all_refused.set()
        await asyncio.wait_for(all_refused.wait(), 5)  # all 100 are in flight with tok-1
        for _ in range(position % 25):  # staggered: some refusals land after the new login
            await asyncio.sleep(0)
        return reply(REJECTED, 401)

    transport.answer(LOGIN, logins.reply, repeat=True)
    transport.answer(SEARCH, answer, repeat=True)
    await search(client)  # tok-1 in the cache
    revoked.add("tok-1")  # EnKash expires it: everything sent with it is refused
    results = await asyncio.gather(*(search(client) for _ in range(100)))
    assert all(len(found) == 1 for found in results)
    assert refused == ["tok-1"] * 100
    assert logins.issued == ["tok-1", "tok-2"]


async def test_rejected_login_is_never_retried(
    client: EnkashClient, transport: FakeTransport
) -> None:
    body = {"error": "invalid_grant", "error_description": "Bad credentials"}
    transport.answer(LOGIN, reply(body, 401), repeat=True)
    with pytest.raises(LoginError) as info:
        await search(client)
    assert len(calls(transport, LOGIN)) == 1
    assert calls(transport, SEARCH) == []
    assert isinstance(info.value, AuthenticationError)
    assert info.value.status == 401


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": "invalid_grant"}),
        (403, {"errorResponse": {"errorType": "INVALID_ACCESS", "errorMessage": "locked"}}),
        (200, {"errorResponse": {"errorType": "UNAUTHORIZED", "errorMessage": "bad login"}}),
        (200, {"response_code": 117, "response_message": "Invalid credentials"}),
    ],
    ids=["400", "403", "200-unauthorized", "200-code-117"],
)
async def test_login_refusal_in_any_form_is_a_login_error(
    client: EnkashClient, status: int, body: dict[str, Any], transport: FakeTransport
) -> None:
    transport.answer(LOGIN, reply(body, status), repeat=True)
    with pytest.raises(LoginError):
        await search(client)
    assert len(calls(transport, LOGIN)) == 1


async def test_login_is_retried_when_enkash_did_not_process_it(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(LOGIN, reply(b"busy", 503))
    transport.answer(LOGIN, Logins().reply)
    transport.answer(SEARCH, reply(PAGE))
    await search(client)
    assert len(calls(transport, LOGIN)) == 2


# --------------------------------------------------------------------------- from_env


async def test_from_env_with_a_token(transport: FakeTransport) -> None:
    env = {"ENKASH_BASE_URL": BASE, "ENKASH_TOKEN": "env-token"}
    async with EnkashClient.from_env(env, retry=POLICY, transport=transport) as client:
        transport.answer(SEARCH, reply(PAGE))
        await search(client)
    assert client.base_url == BASE
    assert [bearer(c) for c in calls(transport, SEARCH)] == ["Bearer env-token"]


async def test_from_env_with_password_credentials(
    monkeypatch: pytest.MonkeyPatch, transport: FakeTransport
) -> None:
    monkeypatch.delenv("ENKASH_TOKEN", raising=False)
    for name, value in {
        "ENKASH_BASE_URL": BASE,
        "ENKASH_CLIENT_ID": "acme-client",
        "ENKASH_CLIENT_SECRET": "s3cr3t-client",
        "ENKASH_USERNAME": "ops@acme.in",
        "ENKASH_PASSWORD": "pw!",
    }.items():
        monkeypatch.setenv(name, value)
    async with EnkashClient.from_env(retry=POLICY, transport=transport) as client:
        transport.answer(LOGIN, Logins().reply)
        transport.answer(SEARCH, reply(PAGE))
        await search(client)
    (login,) = calls(transport, LOGIN)
    assert login.form is not None
    assert login.form["username"] == "ops@acme.in"
    assert login.form["password"] == "pw!"
    assert [bearer(c) for c in calls(transport, SEARCH)] == ["Bearer tok-1"]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        (
            {},
            {
                "ENKASH_BASE_URL",
                "ENKASH_CLIENT_ID",
                "ENKASH_CLIENT_SECRET",
                "ENKASH_USERNAME",
                "ENKASH_PASSWORD",
            },
        ),
        ({"ENKASH_TOKEN": "t"}, {"ENKASH_BASE_URL"}),
        (
            {"ENKASH_BASE_URL": BASE, "ENKASH_CLIENT_ID": "id", "ENKASH_USERNAME": ""},
            {"ENKASH_CLIENT_SECRET", "ENKASH_USERNAME", "ENKASH_PASSWORD"},
        ),
    ],
    ids=["empty", "no-base-url", "partial-credentials"],
)
def test_from_env_names_each_missing_variable(env: dict[str, str], missing: set[str]) -> None:
    with pytest.raises(ValidationError) as info:
        EnkashClient.from_env(env)
    assert set(info.value.fields) == missing
    for name in missing:
        assert name in str(info.value)


async def test_a_login_refused_oauth_style_says_why(transport: FakeTransport) -> None:
    transport.answer(
        LOGIN, reply({"error": "invalid_grant", "error_description": "Bad credentials"}, 401)
    )
    creds = PasswordCredentials("cid", "csecret", "user", "pw")
    async with EnkashClient(
        "https://api.enkash.test", credentials=creds, transport=transport
    ) as client:
        with pytest.raises(LoginError, match="Bad credentials"):
            await client.customers.search().first()
