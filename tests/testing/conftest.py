"""Shared fixtures for the fake EnKash server's tests: a raw aiohttp session and helpers."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest
from multidict import CIMultiDictProxy

from enkash_async._validation import gstin_check_character
from enkash_async.testing import FakeEnkash, pytest_plugin

VALID_GSTIN = "29AAACA1234A1Z" + gstin_check_character("29AAACA1234A1Z")


def pytest_configure(config: pytest.Config) -> None:
    # Installed, the plugin comes from its pytest11 entry point; from a checkout, from here.
    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin, "enkash_async")


def basic(client_id: str, secret: str) -> str:
    """A Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@attrs.frozen
class Reply:
    """What came back: status, headers, raw body, and the body as JSON."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        return self.json["errorResponse"]  # type: ignore[no-any-return]

    @property
    def sub_errors(self) -> dict[str, str]:
        """apiSubErrors as field -> message."""
        return {sub["field"]: sub["message"] for sub in self.error["apiSubErrors"]}

    @property
    def data(self) -> list[dict[str, Any]]:
        return self.json["payload"]["data"]  # type: ignore[no-any-return]


_DEFAULT: Any = object()


@attrs.define
class Api:
    """Raw HTTP calls to a FakeEnkash (the SDK client is not used here)."""

    http: aiohttp.ClientSession
    server: FakeEnkash

    @staticmethod
    def basic(client_id: str, secret: str) -> str:
        """A Basic Authorization header value."""
        return basic(client_id, secret)

    async def post(
        self,
        path: str,
        *,
        token: str | None = _DEFAULT,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Reply:
        sent = dict(headers or {})
        if token is _DEFAULT:
            token = self.server.token
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        async with self.http.post(self.server.url + path, headers=sent, **kwargs) as response:
            return Reply(response.status, response.headers, await response.read())

    async def login(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        grant_type: str = "password",
        client_id: str | None = None,
        authorization: str | None = None,
    ) -> Reply:
        creds = self.server.credentials
        form = {
            "username": creds.username if username is None else username,
            "password": creds.password if password is None else password,
            "grant_type": grant_type,
            "clientId": creds.client_id if client_id is None else client_id,
        }
        if authorization is None:
            authorization = basic(creds.client_id, creds.client_secret)
        return await self.post(
            "/oauth/token", token=None, headers={"Authorization": authorization}, data=form
        )

    async def create(self, body: Any, **kwargs: Any) -> Reply:
        return await self.post("/api/v0/customer", json=body, **kwargs)

    async def search(
        self, body: Any = None, *, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> Reply:
        if body is not None:
            kwargs["json"] = body
        query = {key: str(value) for key, value in (params or {}).items()}
        return await self.post("/api/v0/customer/search", params=query, **kwargs)

    async def search_all(self, body: Any = None, **params: Any) -> list[dict[str, Any]]:
        reply = await self.search(
            body if body is not None else {}, params={"limit": 5000, **params}
        )
        assert reply.status == 200, reply.body
        return reply.data


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api(enkash_server: FakeEnkash, http: aiohttp.ClientSession) -> Api:
    return Api(http, enkash_server)


_VALID_BODY: dict[str, Any] = {
    "accountNumber": "50100012345678",
    "address": "12, MG Road, Bengaluru",
    "companyId": "CEK1A2B3C4",
    "contactNumber": "+91 9876543210",
    "customerCompanyId": "ACME-IN",
    "customerKeyContacts": [
        {
            "deleted": False,
            "email": "priya.sharma@acme.in",
            "keyContactPersonId": None,
            "legalName": "Acme Textiles Private Limited",
            "mail_enabled": True,
            "mobile": "9876543210",
            "name": "Priya Sharma",
            "sms_enabled": False,
            "via": "EMAIL",
            "whatsapp_enabled": True,
        }
    ],
    "customerReminders": [
        {
            "dueDateDifference": -3,
            "reminderInterval": 0,
            "reminderTime": "10:30",
            "reminderType": "ONCE",
            "stage": "BEFORE_DUE",
        }
    ],
    "externalSource": False,
    "ifsc": "HDFC0001234",
    "legalName": "Acme Textiles Private Limited",
    "panOrGstin": VALID_GSTIN,
    "pinCode": "560001",
    "source": "ENKASH",
    "state": "Karnataka",
    "uniqueRefNo": "ERP-9000001",
}


@pytest.fixture
def valid_body() -> dict[str, Any]:
    """A CustomerCreate that breaks no rule (a fresh copy per test)."""
    return copy.deepcopy(_VALID_BODY)
