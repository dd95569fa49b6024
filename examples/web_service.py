"""An aiohttp.web service that shares one EnkashClient across all its requests.

The client is made when the app starts and closed when it shuts down (``cleanup_ctx``),
so every request reuses its connection pool, login and limits::

    export ENKASH_BASE_URL=... ENKASH_CLIENT_ID=... ENKASH_CLIENT_SECRET=... \\
        ENKASH_USERNAME=... ENKASH_PASSWORD=...
    python examples/web_service.py --port 8080
    curl 'http://127.0.0.1:8080/customers?legal_name=Acme&limit=10'
    curl -X POST http://127.0.0.1:8080/customers -d @customer.json   # EnKash's wire JSON

Tracing: the client emits spans and metrics through OpenTelemetry's global providers, so a
service that configures the SDK sees every call with no flag. ``--trace`` does that here,
printing each span to stdout (needs ``pip install 'enkash-async[otel]' opentelemetry-sdk``).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from enkash_async import (
    APIError,
    CustomerCreate,
    CustomerSearch,
    EnkashClient,
    EnkashError,
    ValidationError,
)

ENKASH = web.AppKey("enkash", EnkashClient)
MAX_LIMIT = 100


HOOKS = web.AppKey("enkash_hooks", object)


async def enkash_client(app: web.Application) -> AsyncIterator[None]:
    """One client for the app's lifetime: made at startup, closed on shutdown."""
    app[ENKASH] = EnkashClient.from_env(hooks=app.get(HOOKS))
    yield
    await app[ENKASH].aclose()


def trace_to_stdout() -> None:
    """Configure the OpenTelemetry SDK globally, each span printed as it ends: the client
    (and anything else instrumented) then traces with no further setup."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


def _problem(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def list_customers(request: web.Request) -> web.Response:
    """GET /customers?legal_name=...&limit=N: the first N matching customers."""
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        return _problem(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    search = CustomerSearch(legal_name=request.query.get("legal_name") or None)
    try:
        found = request.app[ENKASH].customers.search(search, page_size=limit, max_items=limit)
        customers = [customer.to_dict() async for customer in found]
    except EnkashError as exc:
        return _problem(502, f"EnKash: {exc}")
    return web.json_response({"customers": customers})


async def create_customer(request: web.Request) -> web.Response:
    """POST /customers with EnKash's wire JSON: the stored customer, 201 when it was
    created. With a ``uniqueRefNo`` it is an upsert (200 when that customer existed and
    only what differed was updated), so a client retrying its POST stores it once."""
    try:
        customer = CustomerCreate.from_dict(await request.json())
    except ValueError as exc:  # ValidationError, or a body that is not JSON
        fields = exc.fields if isinstance(exc, ValidationError) else []
        return _problem(422, "invalid customer", fields=list(fields))
    try:
        customers = request.app[ENKASH].customers
        if customer.unique_ref_no:
            result = await customers.upsert(customer)
            stored, created = result.customer, result.outcome == "created"
        else:
            stored, created = await customers.create(customer), True
    except APIError as exc:
        return _problem(502, f"EnKash refused it: {exc.api_message}")
    except EnkashError as exc:
        return _problem(502, f"EnKash: {exc}")
    return web.json_response(stored.to_dict(), status=201 if created else 200)


def make_app(hooks: Any = None) -> web.Application:
    """The service: its routes, and the shared client in its lifespan (told ``hooks``, such
    as ``OtelHooks(tracer_provider=...)``, when given)."""
    app = web.Application()
    if hooks is not None:
        app[HOOKS] = hooks
    app.cleanup_ctx.append(enkash_client)
    app.router.add_get("/customers", list_customers)
    app.router.add_post("/customers", create_customer)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--trace", action="store_true", help="print every span to stdout")
    args = parser.parse_args()
    if args.trace:
        trace_to_stdout()
    web.run_app(make_app(), host=args.host, port=args.port)
