"""The HTTP session, the headers every request carries, and the base URL rules, against a
real aiohttp server on 127.0.0.1 (``loopback``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _loopback import Loopback, Received, hang_up, respond
from _support import BASE, no_sleep

import enkash_async
from enkash_async import (
    CustomerSearch,
    EnkashClient,
    EnkashError,
    NotFoundError,
    RetryPolicy,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)

POLICY = RetryPolicy(sleep=no_sleep)
PAGE = {"payload": {"data": [{"customerId": "C1", "id": 1}], "recordsCount": 1}}


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[aiohttp.ClientSession]:
    """Every aiohttp session created while the test runs."""
    made: list[aiohttp.ClientSession] = []
    real = aiohttp.ClientSession

    def recording(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(aiohttp, "ClientSession", recording)
    return made


@pytest.fixture
async def server(loopback: Loopback) -> Loopback:
    """The loopback server answering one page of one customer, unless a test says else."""
    loopback.reply(200, PAGE)
    return loopback


@pytest.fixture
async def client(server: Loopback) -> AsyncIterator[EnkashClient]:
    async with EnkashClient(server.url, token="t", retry=POLICY) as c:
        yield c


async def search(client: EnkashClient) -> list[Any]:
    return await client.customers.search(CustomerSearch(), page_size=10).collect()


def request_ids(server: Loopback) -> list[str]:
    return [call.headers["X-Request-Id"] for call in server.received]


def only(server: Loopback) -> Received:
    (call,) = server.received
    return call


# --------------------------------------------------------------------------- session


def test_constructing_a_client_outside_a_loop_makes_no_session(
    sessions: list[aiohttp.ClientSession],
) -> None:
    EnkashClient(BASE, token="t")
    assert sessions == []


async def test_one_session_is_made_lazily_and_reused(
    sessions: list[aiohttp.ClientSession], server: Loopback
) -> None:
    async with EnkashClient(server.url, token="t", retry=POLICY) as client:
        assert sessions == []
        for _ in range(3):
            await search(client)
        assert len(sessions) == 1
        assert not sessions[0].closed
    assert len(server.received) == 3


async def test_async_with_closes_the_session_it_made(
    sessions: list[aiohttp.ClientSession], server: Loopback
) -> None:
    async with EnkashClient(server.url, token="t", retry=POLICY) as client:
        await search(client)
    assert [s.closed for s in sessions] == [True]


async def test_aclose_closes_the_session_and_may_be_called_twice(
    sessions: list[aiohttp.ClientSession], server: Loopback
) -> None:
    client = EnkashClient(server.url, token="t", retry=POLICY)
    await search(client)
    await client.aclose()
    await client.aclose()
    assert [s.closed for s in sessions] == [True]


async def test_closed_client_refuses_calls(
    sessions: list[aiohttp.ClientSession], server: Loopback
) -> None:
    client = EnkashClient(server.url, token="t", retry=POLICY)
    await client.aclose()
    with pytest.raises(EnkashError, match="closed"):
        await search(client)
    assert server.received == []
    assert sessions == []


async def test_caller_session_is_used_and_left_open(
    sessions: list[aiohttp.ClientSession], server: Loopback
) -> None:
    async with aiohttp.ClientSession() as own:
        async with EnkashClient(server.url, token="t", session=own, retry=POLICY) as client:
            await search(client)
        assert sessions == [own]  # no session of the client's own
        assert not own.closed
    assert own.closed
    assert len(server.received) == 1


# --------------------------------------------------------------------------- headers


async def test_user_agent_names_the_library_and_version(
    client: EnkashClient, server: Loopback
) -> None:
    await search(client)
    assert only(server).headers["User-Agent"] == f"enkash-async/{enkash_async.__version__}"


async def test_each_call_gets_its_own_request_id(client: EnkashClient, server: Loopback) -> None:
    for _ in range(3):
        await search(client)
    ids = request_ids(server)
    assert len(ids) == 3
    assert len(set(ids)) == 3
    assert all(ids)


async def test_request_id_is_kept_across_a_calls_retries(
    client: EnkashClient, server: Loopback
) -> None:
    server.answer(respond(503, {}), respond(503, {}), hang_up, respond(200, PAGE))
    await search(client)
    ids = request_ids(server)
    assert len(ids) == 4
    assert len(set(ids)) == 1


async def test_request_id_is_surfaced_on_api_errors(client: EnkashClient, server: Loopback) -> None:
    server.reply(500, "Internal Server Error")
    with pytest.raises(ServerError) as info:
        await search(client)
    (sent,) = set(request_ids(server))
    assert info.value.request_id == sent
    assert sent in str(info.value)


async def test_request_id_is_surfaced_on_transport_errors(
    client: EnkashClient, server: Loopback
) -> None:
    server.answer(hang_up)
    with pytest.raises(TransportError) as info:
        await search(client)
    (sent,) = set(request_ids(server))
    assert info.value.request_id == sent
    assert sent in str(info.value)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("<html>maintenance</html>", {"Content-Type": "text/html"}),
        ({"payload": {"data": "nope"}}, {}),
        ({"payload": {"data": [42]}}, {}),
    ],
    ids=["html", "wrong-page-shape", "wrong-customer-shape"],
)
async def test_request_id_is_surfaced_on_unexpected_replies(
    client: EnkashClient, server: Loopback, body: Any, headers: dict[str, str]
) -> None:
    server.reply(200, body, **headers)
    with pytest.raises(UnexpectedResponseError) as info:
        await search(client)
    (sent,) = set(request_ids(server))
    assert info.value.request_id == sent
    assert sent in str(info.value)


async def test_search_sends_its_filter_as_json(client: EnkashClient, server: Loopback) -> None:
    await client.customers.search(CustomerSearch(legal_name="Acme"), page_size=10).collect()
    call = only(server)
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["Accept"] == "application/json"
    assert call.body == b'{"legalName":"Acme"}'


# --------------------------------------------------------------------------- base URL


@pytest.mark.parametrize(
    "url", ["http://api.enkash.com", "http://10.0.0.5:8080", "http://localhost.evil.example"]
)
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        EnkashClient(url, token="t")
    assert info.value.fields == ("base_url",)


@pytest.mark.parametrize(
    "url", ["http://localhost:8080", "http://127.0.0.1:9000", "http://[::1]:9000"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert EnkashClient(url, token="t").base_url == url


def test_plain_http_is_allowed_when_asked_for() -> None:
    client = EnkashClient("http://enkash.internal", token="t", allow_insecure_http=True)
    assert client.base_url == "http://enkash.internal"


@pytest.mark.parametrize("url", ["ftp://api.enkash.com", "api.enkash.com", "https://"])
def test_base_url_must_be_an_http_url(url: str) -> None:
    with pytest.raises(ValidationError):
        EnkashClient(url, token="t")


@pytest.mark.parametrize("url", ["https://…", "https://a..b", "https://" + "x" * 64 + ".com"])
def test_base_url_with_a_host_no_request_can_name_is_refused_when_built(url: str) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        EnkashClient(url, token="t")


async def test_base_url_trailing_slash_is_dropped(server: Loopback) -> None:
    async with EnkashClient(server.url + "/", token="t", retry=POLICY) as client:
        await search(client)
    assert only(server).path == "/api/v0/customer/search"


async def test_unrouted_404_is_not_found(client: EnkashClient, server: Loopback) -> None:
    server.reply(404, "<html>Not Found</html>", **{"Content-Type": "text/html"})
    with pytest.raises(NotFoundError) as info:
        await search(client)
    assert info.value.status == 404


async def test_a_closed_caller_session_raises_an_enkash_error_not_runtime_error() -> None:
    session = aiohttp.ClientSession()
    await session.close()
    async with EnkashClient("https://api.enkash.test", token="t", session=session) as client:
        with pytest.raises(EnkashError, match="session given to the client is closed"):
            await client.customers.search().first()
