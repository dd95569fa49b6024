"""EnKash answering 500 and committing the customer a moment later: reconciliation
waits the settle time and looks before it sends again, so nothing is stored twice."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from _hostile import Hostile, envelope
from _support import new_customer
from aiohttp import web

from enkash_async import EnkashClient, RetryPolicy


class LateCommitter:
    """Stores each customer once per create; every other first attempt answers 500 and
    commits ``lag`` seconds later."""

    def __init__(self, lag: float) -> None:
        self.lag = lag
        self.stored: list[dict[str, Any]] = []
        self.first_attempts: set[str] = set()

    def commit(self, body: dict[str, Any]) -> dict[str, Any]:
        record = {**body, "customerId": f"C{len(self.stored) + 1:07d}", "id": len(self.stored)}
        self.stored.append(record)
        return record

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read() or b"{}")
        if request.path.endswith("/search"):
            ref = body.get("uniqueRefNo")
            found = [r for r in self.stored if r.get("uniqueRefNo") == ref]
            return web.json_response(envelope({"data": found, "recordsCount": len(found)}))
        ref = body["uniqueRefNo"]
        late = ref not in self.first_attempts and int(ref.split("-")[1]) % 2 == 0
        self.first_attempts.add(ref)
        if late:
            asyncio.get_running_loop().call_later(self.lag, self.commit, body)
            failure = {"errorResponse": {"errorType": "SYSTEM_ERROR", "errorMessage": "late"}}
            return web.json_response(failure, status=500)
        return web.json_response(envelope(self.commit(body)))


async def test_a_commit_landing_within_the_settle_time_is_found_not_sent_again() -> None:
    server = LateCommitter(lag=0.2)
    policy = RetryPolicy(settle_time=0.4, initial_backoff=0.01, max_backoff=0.05)
    inputs = [new_customer(f"ERP-{i}") for i in range(20)]
    async with (
        Hostile(server.handle) as hostile,
        EnkashClient(hostile.url, token="t", retry=policy) as client,
    ):
        results = [r async for r in client.customers.create_many(inputs, concurrency=20)]
    refs = [r["uniqueRefNo"] for r in server.stored]
    assert sorted(refs) == sorted(i.unique_ref_no for i in inputs)  # each stored once
    assert all(r.ok for r in results)
    assert sum(r.reconciled for r in results) == 10
