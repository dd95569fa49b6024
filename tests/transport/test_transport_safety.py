"""Transport safety: TLS verified by default, no plain http off loopback, TLS failures not retried.

The TLS tests run a fake EnKash behind a real self-signed certificate (made with the
``openssl`` command, skipped where there is none): the default client must refuse it,
at once and without retrying, and a client told to trust it must get through. Each kind
of TLS failure aiohttp raises is raised by a real session's request-start trace hook
(``failing_session``), in front of a real server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from _loopback import Loopback, failing_session, serving
from _support import no_sleep
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey

from enkash_async import (
    AmbiguousCreateError,
    ConnectError,
    CustomerCreate,
    EnkashClient,
    KeyContactCreate,
    RetryPolicy,
    ValidationError,
)
from enkash_async.errors import TLSError
from enkash_async.testing import FakeEnkash

PAGE = {"payload": {"data": [], "recordsCount": 0}, "response_code": 0}
CONNECTION_KEY = ConnectionKey("api.enkash.test", 443, True, True, None, None, None)
NEW = CustomerCreate(
    legal_name="Acme Traders Pvt Ltd",
    customer_key_contacts=[
        KeyContactCreate(name="Asha", legal_name="Acme Traders Pvt Ltd", mobile="9876543210")
    ],
    unique_ref_no="ERP-0000001",
)


@attrs.define
class Retries:
    count: int = 0

    def __call__(self, event: object) -> None:
        self.count += 1


# --------------------------------------------------------------------------- the connector


@pytest.fixture
def connectors(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every aiohttp.TCPConnector made."""
    made: list[dict[str, Any]] = []
    real = aiohttp.TCPConnector

    class Recording(real):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(aiohttp, "TCPConnector", Recording)
    return made


@pytest.fixture
def server(loopback: Loopback) -> Loopback:
    loopback.reply(200, PAGE)
    return loopback


async def search_once(client: EnkashClient) -> None:
    assert await client.customers.search().collect() == []


async def test_tls_verification_is_on_by_default(
    connectors: list[dict[str, Any]], server: Loopback
) -> None:
    async with EnkashClient(server.url, token="t") as client:
        await search_once(client)
    [kwargs] = connectors
    assert kwargs["ssl"] is True  # aiohttp: verify with the default trust store


async def test_callers_ssl_context_reaches_the_connector(
    connectors: list[dict[str, Any]], server: Loopback
) -> None:
    context = ssl.create_default_context()
    async with EnkashClient(server.url, token="t", ssl=context) as client:
        await search_once(client)
    assert connectors[0]["ssl"] is context


async def test_verification_is_off_only_when_the_caller_says_so(
    connectors: list[dict[str, Any]], server: Loopback
) -> None:
    async with EnkashClient(server.url, token="t", ssl=False) as client:
        await search_once(client)
    assert connectors[0]["ssl"] is False


# --------------------------------------------------------------------------- plain http


@pytest.mark.parametrize(
    "url",
    [
        "http://api.enkash.test",
        "http://10.0.0.5:8080",
        "http://localhost.evil.test",
        "http://127.0.0.1.nip.io",
        "http://127.0.0.1@evil.test/",
        "HTTP://api.enkash.test",
    ],
)
def test_plain_http_to_anything_but_loopback_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        EnkashClient(url, token="t")
    assert info.value.fields == ("base_url",)
    # "127.0.0.1@" is userinfo, refused as such before the scheme is looked at
    assert "allow_insecure_http" in str(info.value) or "user name or password" in str(info.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:1", "http://[::1]:9"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    EnkashClient(url, token="t")


def test_plain_http_elsewhere_needs_allow_insecure_http() -> None:
    client = EnkashClient("http://10.0.0.5:8080", token="t", allow_insecure_http=True)
    assert client.base_url == "http://10.0.0.5:8080"


# --------------------------------------------------------------------------- TLS failures


def certificate_error() -> Exception:
    return aiohttp.ClientConnectorCertificateError(
        CONNECTION_KEY, ssl.SSLCertVerificationError(1, "certificate verify failed")
    )


def handshake_error() -> Exception:
    return aiohttp.ClientConnectorSSLError(
        CONNECTION_KEY, ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    )


def fingerprint_error() -> Exception:
    return aiohttp.ServerFingerprintMismatch(b"expected", b"got", "api.enkash.test", 443)


TLS_FAILURES = [certificate_error, handshake_error, fingerprint_error]


@pytest.mark.parametrize("failure", TLS_FAILURES)
async def test_tls_failure_on_search_is_raised_at_once_not_retried(
    failure: Any, server: Loopback
) -> None:
    retries = Retries()
    policy = RetryPolicy(sleep=no_sleep, on_retry=retries)
    # The server answers what a (pointless) retry would get.
    async with (
        failing_session(failure()) as session,
        EnkashClient(server.url, token="t", retry=policy, session=session) as client,
    ):
        with pytest.raises(TLSError) as info:
            await client.customers.search().collect()
    assert retries.count == 0 and client.stats.requests == 1
    assert server.received == []
    assert isinstance(info.value, ConnectError)  # nothing was sent
    assert "ssl=" in str(info.value)


@pytest.mark.parametrize("failure", TLS_FAILURES)
async def test_tls_failure_on_create_is_neither_retried_nor_reconciled(
    failure: Any, server: Loopback
) -> None:
    policy = RetryPolicy(sleep=no_sleep)
    async with (
        failing_session(failure()) as session,
        EnkashClient(server.url, token="t", retry=policy, session=session) as client,
    ):
        with pytest.raises(TLSError):
            await client.customers.create(NEW)
    assert client.stats.requests == 1
    assert server.received == []  # no lookup either


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_refused_connection_is_still_retried() -> None:
    port = _free_port()
    async with contextlib.AsyncExitStack() as stack:
        started: list[Loopback] = []

        async def start_listening(seconds: float) -> None:
            # The retry's pause: nothing listened on the first attempt; now a server does.
            if not started:
                started.append(await stack.enter_async_context(serving(port)))
                started[0].reply(200, PAGE)

        policy = RetryPolicy(sleep=start_listening)
        async with EnkashClient(f"http://127.0.0.1:{port}", token="t", retry=policy) as client:
            assert await client.customers.search().collect() == []
        assert client.stats.requests == 2
        assert len(started[0].received) == 1


# --------------------------------------------------------------------------- a real certificate


@attrs.frozen
class TLSServer:
    url: str
    fake: FakeEnkash
    cert: Path


@pytest.fixture
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[TLSServer]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    fake = FakeEnkash(customers=3, seed=1)
    runner = web.AppRunner(fake.app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    port = runner.addresses[0][1]
    try:
        yield TLSServer(f"https://localhost:{port}", fake, cert)
    finally:
        await runner.cleanup()


async def test_default_client_refuses_an_untrusted_certificate_at_once(
    tls_server: TLSServer,
) -> None:
    retries = Retries()
    policy = RetryPolicy(sleep=no_sleep, on_retry=retries)
    token = tls_server.fake.issue_token()
    async with EnkashClient(tls_server.url, token=token, retry=policy) as client:
        with pytest.raises(TLSError, match="certificate"):
            await client.customers.search().collect()
        with pytest.raises(TLSError):
            await client.customers.create(NEW)
    assert retries.count == 0 and client.stats.requests == 2
    assert tls_server.fake.stats.requests == {}  # no HTTP request ever got through


async def test_a_client_told_to_trust_the_certificate_gets_through(
    tls_server: TLSServer,
) -> None:
    trusting = ssl.create_default_context(cafile=str(tls_server.cert))
    token = tls_server.fake.issue_token()
    async with EnkashClient(tls_server.url, token=token, ssl=trusting) as client:
        assert len(await client.customers.search().collect()) == 3
        created = await client.customers.create(NEW)
    assert created.unique_ref_no == "ERP-0000001"


async def test_create_that_fails_tls_is_never_called_ambiguous(tls_server: TLSServer) -> None:
    token = tls_server.fake.issue_token()
    async with EnkashClient(
        tls_server.url, token=token, retry=RetryPolicy(sleep=no_sleep)
    ) as client:
        with pytest.raises(TLSError) as info:
            await client.customers.create(attrs.evolve(NEW, unique_ref_no=None))
    assert not isinstance(info.value, AmbiguousCreateError)
    assert tls_server.fake.stats.created == 0
