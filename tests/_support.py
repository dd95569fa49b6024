"""Helpers shared by the client's unit tests (fixtures built on them are in conftest.py).

``FakeTransport`` stands where the aiohttp transport would (``EnkashClient(transport=...)``)
so tests of retries, auth and reconciliation script replies without mocking aiohttp.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from enkash_async import EnkashClient, RetryPolicy
from enkash_async._fast import dumps

if TYPE_CHECKING:
    from enkash_async._reply import Reply
    from enkash_async._transport import Timeouts

BASE = "https://api.enkash.test"
CREATE_PATH = "/api/v0/customer"
SEARCH_PATH = "/api/v0/customer/search"
LOGIN_PATH = "/oauth/token"


async def no_sleep(seconds: float) -> None:
    """A ``RetryPolicy.sleep`` that never waits."""


class FakeTime:
    """A ``sleep`` that only records, and a ``clock`` that the sleeps advance."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def ok(payload: Any) -> dict[str, Any]:
    """EnKash's success envelope around ``payload``."""
    return {"errorResponse": None, "payload": payload, "response_code": 0}


def failed(message: str = "failed", error_type: str = "SYSTEM_ERROR") -> dict[str, Any]:
    """EnKash's error envelope."""
    return {"errorResponse": {"errorType": error_type, "errorMessage": message}}


def reply(
    data: Any = None, status: int = 200, *, headers: Mapping[str, str] | None = None
) -> Reply:
    """A reply whose body is ``data`` as JSON (bytes as they are)."""
    from enkash_async._reply import Reply  # here, so the tests' "before" runs import

    body = data if isinstance(data, bytes) else dumps(data)
    return Reply(status=status, headers=dict(headers or {}), body=body, request_id="")


@attrs.frozen
class Sent:
    """One request the client handed to the transport."""

    path: str
    body: bytes | None
    form: Mapping[str, str] | None
    params: Mapping[str, str] | None
    headers: Mapping[str, str]
    request_id: str
    timeouts: Timeouts
    method: str = "POST"


# An answer: a Reply, an exception to raise, or a function of the request giving either.
Answer = Any  # a Reply, a BaseException, or a Callable[[Sent], Reply | BaseException]


class FakeTransport:
    """A :class:`~enkash_async._transport.Transport` answering from a script.

    ``answer(path, *answers)`` queues answers for a path, used in order; the last one
    repeats when ``repeat`` is set. ``sent`` records every request.
    """

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._script: dict[str, list[Answer]] = {}
        self._repeat: dict[str, Answer] = {}
        self.closed = False

    def answer(self, path: str, *answers: Answer, repeat: bool = False) -> FakeTransport:
        self._script.setdefault(path, []).extend(answers)
        if repeat and answers:
            self._repeat[path] = answers[-1]
            self._script[path].pop()
        return self

    def to(self, path: str) -> list[Sent]:
        """The requests sent to ``path``."""
        return [s for s in self.sent if s.path == path]

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str],
        request_id: str,
        timeouts: Timeouts,
    ) -> Reply:
        sent = Sent(path, body, form, params, dict(headers), request_id, timeouts, method)
        self.sent.append(sent)
        queue = self._script.get(path, [])
        if queue:
            answer = queue.pop(0)
        elif path in self._repeat:
            answer = self._repeat[path]
        else:
            raise AssertionError(f"unexpected request to {path}")
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer(sent)
            if inspect.isawaitable(answer):
                answer = await answer
        if isinstance(answer, BaseException):
            raise answer
        return attrs.evolve(answer, request_id=request_id)

    async def aclose(self) -> None:
        self.closed = True


def fake_client(
    transport: FakeTransport, *, policy: RetryPolicy | None = None, **kwargs: Any
) -> EnkashClient:
    """A client over ``transport`` with a static token (unless given ``credentials``), never
    waiting between retries."""
    if "credentials" not in kwargs:
        kwargs.setdefault("token", "t")
    return EnkashClient(
        BASE, transport=transport, retry=policy or RetryPolicy(sleep=no_sleep), **kwargs
    )


def new_customer(ref: str | None = "ERP-0000001", name: str = "Acme Traders Pvt Ltd") -> Any:
    """A valid CustomerCreate."""
    from enkash_async import CustomerCreate, KeyContactCreate

    return CustomerCreate(
        legal_name=name,
        customer_key_contacts=[
            KeyContactCreate(name="Asha Rao", legal_name=name, mobile="9876543210")
        ],
        unique_ref_no=ref,
    )


def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks left running but the caller, and the transport's own (it closes the session
    when the loop ends)."""
    return {
        task
        for task in asyncio.all_tasks() - {asyncio.current_task()}
        if task.get_coro().__name__ != "_close_when_cancelled"  # type: ignore[union-attr]
    }
