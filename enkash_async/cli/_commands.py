"""The CLI's commands (``demo``, ``serve``, ``customers create|search``), each registered
with its parser by a ``register_*`` function and run by its ``handler``."""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from enkash_async import (
    CustomerCreate,
    CustomerSearch,
    CustomerStatus,
    EnkashClient,
    ValidationError,
    _csv,
)
from enkash_async.cli import _import, _lifecycle
from enkash_async.cli import _types as types
from enkash_async.cli._connect import add_connection_flags, connect, count_words
from enkash_async.cli._ui import CommandError, err, json_text, progress, table, terminal_text
from enkash_async.sync import wire_path
from enkash_async.sync._sources import load_json_document

__all__ = ["create", "demo", "register", "search", "serve", "synthetic_creates"]


def register(commands: Any) -> None:
    """Add ``demo``, ``serve`` and ``customers create|search|import`` to ``commands``."""
    demo_parser = commands.add_parser(
        "demo",
        help="create customers on an embedded fake EnKash and read them back",
        description="Create customers on an embedded fake EnKash, read them all back, and "
        "check that none was lost or duplicated.",
    )
    demo_parser.add_argument(
        "--customers",
        type=types.positive,
        default=10_000,
        metavar="N",
        help="customers to create, 1 or more (default: %(default)s)",
    )
    demo_parser.add_argument(
        "--concurrency",
        type=types.positive,
        default=64,
        metavar="N",
        help="creates in flight at once, 1 or more (default: %(default)s)",
    )
    demo_parser.add_argument(
        "--page-size",
        type=types.page_size,
        default=5000,
        metavar="N",
        help="customers per search page, 1-5000 (default: %(default)s)",
    )
    demo_parser.add_argument(
        "--seed",
        type=types.seed,
        default=7,
        metavar="N",
        help="seed of the synthetic customers; the same seed makes the "
        "same customers (default: %(default)s)",
    )
    demo_parser.add_argument(
        "--fault-rate",
        type=types.fraction,
        default=0.0,
        metavar="RATE",
        help="share of requests the fake server fails, 0 to 1, to watch "
        "retries work (default: %(default)s)",
    )
    demo_parser.set_defaults(handler=_run_demo)

    serve_parser = commands.add_parser(
        "serve",
        help="run a fake EnKash server until interrupted",
        description="Run a fake EnKash on this machine until Ctrl-C. It prints its address "
        "and credentials as one JSON line on stdout, and on stderr the `export` lines that "
        "point this CLI at it.",
    )
    serve_parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve_parser.add_argument(
        "--port",
        type=types.port,
        default=8080,
        metavar="N",
        help="port, 0-65535; 0 picks a free one (default: %(default)s)",
    )
    serve_parser.add_argument(
        "--customers",
        type=types.count,
        default=1000,
        metavar="N",
        help="customers it starts with, 0 or more (default: %(default)s)",
    )
    serve_parser.add_argument(
        "--seed",
        type=types.seed,
        default=0,
        metavar="N",
        help="seed of those customers (default: %(default)s)",
    )
    serve_parser.add_argument(
        "--fault-rate",
        type=types.fraction,
        default=0.0,
        metavar="RATE",
        help="share of requests it fails, 0 to 1, on every route: 503, 500, dropped "
        "connections, and failures after a write was applied (default: %(default)s)",
    )
    serve_parser.add_argument(
        "--fault-seed",
        type=types.seed,
        default=None,
        metavar="N",
        help="seed of the fault draws; the same seed and requests give the same faults "
        "(default: --seed)",
    )
    serve_parser.add_argument(
        "--accept-unknown-fields",
        action="store_true",
        help="ignore request fields EnKash's schema does not have, as a Spring server that "
        "does not fail on unknown properties would (default: a 400 naming them)",
    )
    serve_parser.set_defaults(handler=_run_serve)

    customers = commands.add_parser(
        "customers",
        help="create, search, export and import customers",
        description="Customers in EnKash: `create` one from JSON, `search` and export them "
        "(JSON lines, CSV or a table), `import` a CSV or JSONL file exactly once by "
        "uniqueRefNo. What `search --format csv|jsonl` writes, `import` reads back.",
    )
    actions = customers.add_subparsers(dest="action", required=True, metavar="ACTION")
    create_parser = actions.add_parser(
        "create",
        help="create (or update, by uniqueRefNo) one customer from wire-format JSON",
        description="Make EnKash hold one customer given as a JSON object in EnKash's wire "
        "format, and print EnKash's record of it as JSON. With a uniqueRefNo it is an "
        "upsert: created when absent, else only the fields that differ are updated, so a "
        "rerun stores it once (stderr says created, updated with the fields, or unchanged).",
    )
    create_parser.add_argument(
        "--json",
        required=True,
        metavar="FILE",
        help="a JSON object in EnKash's wire format, or - for stdin",
    )
    add_connection_flags(create_parser)
    create_parser.set_defaults(handler=_run_create)

    search_parser = actions.add_parser(
        "search",
        help="stream matching customers as JSON lines, CSV or a table",
        description="Stream the customers matching the filters (all when none is given).",
    )
    _search_flags(search_parser)
    add_connection_flags(search_parser)
    search_parser.set_defaults(handler=_run_search)
    _import.register(actions)
    _lifecycle.register(actions)


def _search_flags(sub: argparse.ArgumentParser) -> None:
    filters = sub.add_argument_group("filters", "every filter given must match")
    filters.add_argument(
        "--legal-name", metavar="TEXT", help="case-insensitive part of the legal name"
    )
    filters.add_argument("--unique-ref-no", metavar="REF", help="your system's id")
    filters.add_argument("--pan-or-gstin", metavar="ID", help="PAN or GSTIN")
    filters.add_argument("--company-id", metavar="ID", help="EnKash company id")
    filters.add_argument("--parent-company-id", metavar="ID", help="EnKash parent company id")
    filters.add_argument("--ifsc", metavar="CODE", help="bank IFSC")
    filters.add_argument("--account-number", metavar="NUMBER", help="bank account number")
    filters.add_argument("--contact-number", metavar="NUMBER", help="contact phone number")
    filters.add_argument(
        "--customer-id",
        action="append",
        dest="customer_ids",
        metavar="ID",
        help="an EnKash customer id; repeat for several",
    )
    filters.add_argument(
        "--status", choices=[s.value for s in CustomerStatus], help="customer status"
    )
    sub.add_argument(
        "--order-by", metavar="FIELD", help="a customer field to sort by (default: EnKash's order)"
    )
    sub.add_argument(
        "--direction", choices=["ASC", "DESC"], help="sort direction (default: EnKash's)"
    )
    sub.add_argument(
        "--page-size",
        type=types.page_size,
        default=5000,
        metavar="N",
        help="customers per request, 1-5000 (default: %(default)s)",
    )
    sub.add_argument(
        "--max-items",
        type=types.count,
        metavar="N",
        help="stop after N customers, 0 or more (default: all)",
    )
    sub.add_argument(
        "--format",
        choices=["jsonl", "csv", "table"],
        default="jsonl",
        help="JSON lines and CSV in EnKash's wire names (both import back), or "
        "a table streamed as rows arrive (default: %(default)s)",
    )
    sub.add_argument(
        "--output",
        default="-",
        metavar="PATH",
        help="a file, or - for stdout (default: %(default)s)",
    )


async def _run_demo(args: argparse.Namespace) -> int:
    return await demo(
        customers=args.customers,
        concurrency=args.concurrency,
        page_size=args.page_size,
        seed=args.seed,
        fault_rate=args.fault_rate,
    )


async def _run_serve(args: argparse.Namespace) -> int:
    return await serve(
        args.host,
        args.port,
        args.customers,
        args.seed,
        fault_rate=args.fault_rate,
        fault_seed=args.fault_seed,
        strict=not args.accept_unknown_fields,
    )


async def _run_create(args: argparse.Namespace) -> int:
    data = _read_json(args.json)  # a bad file fails before credentials are looked at
    async with connect(args) as connection:
        return await create(connection.client, data)


async def _run_search(args: argparse.Namespace) -> int:
    try:  # bad flags fail before any connection is made
        search_filter = CustomerSearch(
            legal_name=args.legal_name,
            unique_ref_no=args.unique_ref_no,
            pan_or_gstin=args.pan_or_gstin,
            company_id=args.company_id,
            parent_company_id=args.parent_company_id,
            ifsc=args.ifsc,
            account_number=args.account_number,
            contact_number=args.contact_number,
            customer_ids=args.customer_ids,
            customer_status=args.status,
        )
    except ValidationError as exc:
        raise CommandError(flag_problems(exc)) from None
    async with connect(args) as connection:
        return await search(
            connection.client,
            search_filter,
            order_by=args.order_by,
            direction=args.direction,
            page_size=args.page_size,
            max_items=args.max_items,
            fmt=args.format,
            output=args.output,
        )


# The flags whose names are not their attribute's with dashes.
_FLAGS = {"customer_ids": "--customer-id", "customer_status": "--status"}


def flag_problems(exc: ValidationError) -> str:
    """A validation failure of search arguments in the flags' names, one per line."""
    lines = []
    for problem in exc.errors:
        name = problem.path.split("[")[0]
        flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
        lines.append(f"  {flag}: {problem.message}")
    return "invalid search flags:\n" + "\n".join(lines)


# --------------------------------------------------------------------------- demo


def synthetic_creates(count: int, seed: int) -> Iterator[CustomerCreate]:
    """``count`` realistic, valid ``CustomerCreate``s with refs ``DEMO-0000001``…, made lazily."""
    from enkash_async.testing import synthetic_customers

    for number, wire in enumerate(synthetic_customers(count, seed), start=1):
        contacts = [
            {
                "name": c["name"],
                "legalName": c["name"],
                "mobile": c["mobile"],
                "email": c.get("email"),
                "deleted": False,
            }
            for c in wire.get("customerKeyContacts") or []
        ]
        fields = {
            "legalName": wire["legalName"],
            "customerKeyContacts": contacts,
            "panOrGstin": wire.get("panOrGstin"),
            "ifsc": wire.get("ifsc"),
            "accountNumber": wire.get("accountNumber"),
            "pinCode": wire.get("pinCode"),
            "state": wire.get("state"),
            "address": wire.get("address"),
            "contactNumber": wire.get("contactNumber"),
            "uniqueRefNo": f"DEMO-{number:07d}",
        }
        yield CustomerCreate.from_dict({k: v for k, v in fields.items() if v is not None})


async def demo(
    *, customers: int, concurrency: int, page_size: int, seed: int, fault_rate: float
) -> int:
    """Create ``customers`` on an embedded fake EnKash, stream them back, check none was
    lost or duplicated, and print a summary. Returns 1 if any was lost or duplicated."""
    from enkash_async.testing import FakeEnkash, Fault

    async with FakeEnkash(seed=seed) as server:
        if fault_rate > 0:
            for status in (429, 503):  # failures EnKash never processed: safe to retry
                server.inject(
                    Fault.status(status, retry_after=0), route="create", rate=fault_rate / 2
                )
            server.inject(Fault.status(502), route="search", rate=fault_rate)
        async with EnkashClient(
            server.url,
            credentials=server.credentials,
            max_concurrency=max(100, concurrency),
            max_connections=max(100, concurrency),
        ) as client:
            created: dict[str | None, str | None] = {}
            failures: Counter[str] = Counter()
            latencies: list[float] = []
            started = time.perf_counter()
            with progress("creating", customers) as bar:
                async for result in client.customers.create_many(
                    synthetic_creates(customers, seed), concurrency=concurrency, ordered=False
                ):
                    if result.customer is not None:
                        created[result.input.unique_ref_no] = result.customer.customer_id
                        latencies.append(result.elapsed)
                    else:
                        failures[type(result.error).__name__] += 1
                    bar.advance()
            create_seconds = time.perf_counter() - started

            seen: Counter[str | None] = Counter()
            started = time.perf_counter()
            with progress("reading back", None) as bar:
                async for page in client.customers.search(page_size=page_size).pages():
                    bar.set_total(page.records_count)
                    seen.update(customer.unique_ref_no for customer in page.items)
                    bar.advance(len(page))
            read_seconds = time.perf_counter() - started
            stats = client.stats

    lost = sum(1 for ref in created if seen[ref] == 0)
    duplicated = sum(1 for count in seen.values() if count > 1)
    read = sum(seen.values())
    rows = [
        ("customers created", f"{len(created):,}"),
        ("creates failed", f"{sum(failures.values()):,} {dict(failures) or ''}".strip()),
        ("customers read back", f"{read:,}"),
        ("lost", f"{lost:,}"),
        ("duplicated", f"{duplicated:,}"),
        ("HTTP requests", f"{stats.requests:,}"),
        ("retries", f"{stats.retries:,}"),
        ("logins", f"{stats.logins:,}"),
        ("create requests/s", f"{len(created) / create_seconds:,.0f}"),
        ("search records/s", f"{read / read_seconds:,.0f}" if read_seconds else "-"),
        ("create latency p50", _ms(latencies, 0.50)),
        ("create latency p99", _ms(latencies, 0.99)),
    ]
    table("enkash-async demo against the embedded fake EnKash", ("measure", "value"), rows)
    if lost or duplicated:
        err(f"FAILED: {count_words(lost, 'customer')} lost, {duplicated:,} duplicated")
        return 1
    return 0


def _ms(samples: list[float], quantile: float) -> str:
    if len(samples) < 2:
        return "-"
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"{cuts[round(quantile * 100) - 1] * 1000:.1f} ms"


# --------------------------------------------------------------------------- serve


async def serve(
    host: str,
    port: int,
    customers: int,
    seed: int,
    *,
    fault_rate: float = 0.0,
    fault_seed: int | None = None,
    strict: bool = True,
) -> int:
    """Run the fake EnKash until interrupted, printing its URL and credentials as JSON on
    stdout, and on stderr the ``export`` lines that point the CLI at it. ``fault_rate``
    injects the fault mix on every route (draws seeded by ``fault_seed``); ``strict=False``
    ignores unknown request fields."""
    from enkash_async.testing import FakeEnkash
    from enkash_async.testing import serve as serve_fake
    from enkash_async.testing._server import print_connection_info

    def ready(server: FakeEnkash) -> None:
        # The real address (a --port of 0 is replaced by the port picked), as one JSON
        # line a script can read; the credentials are the fake server's own, not secrets.
        print_connection_info(server)
        info = server.connection_info()
        err(
            f"fake EnKash with {count_words(customers, 'customer')} listening on "
            f"{server.url} (Ctrl-C stops it). To point enkash-async at it, paste:"
        )
        err(export_lines(info))
        if fault_rate:
            err(
                f"failing about {fault_rate:.0%} of requests on every route, after-commit "
                f"included (fault seed {seed if fault_seed is None else fault_seed})"
            )

    await serve_fake(
        host=host,
        port=port,
        customers=customers,
        seed=seed,
        fault_rate=fault_rate,
        fault_seed=fault_seed,
        strict=strict,
        ready=ready,
    )
    return 0


def export_lines(info: dict[str, str]) -> str:
    """Shell ``export`` lines setting the ENKASH_* variables to a fake server's settings."""
    names = {
        "url": "ENKASH_BASE_URL",
        "client_id": "ENKASH_CLIENT_ID",
        "client_secret": "ENKASH_CLIENT_SECRET",
        "username": "ENKASH_USERNAME",
        "password": "ENKASH_PASSWORD",
    }
    return "\n".join(f"export {name}={shlex.quote(info[key])}" for key, name in names.items())


# --------------------------------------------------------------------------- create


def _read_json(source: str) -> Any:
    try:
        return load_json_document(source)
    except OSError as exc:
        name = "stdin" if source == "-" else source
        raise CommandError(f"{name}: {exc.strerror or exc}") from None


async def create(client: EnkashClient, data: Any) -> int:
    """Make EnKash hold the customer ``data`` (wire JSON) and print its record as JSON.

    With a ``uniqueRefNo`` it is an upsert: created when EnKash has no customer with that
    reference, else only the fields that differ are PATCHed, so running it twice stores
    the customer once; what was done goes to stderr. Without one, a plain create.
    """
    if not isinstance(data, dict):
        raise CommandError(f"the customer must be a JSON object, got {type(data).__name__}")
    try:
        customer = CustomerCreate.from_dict(data)
    except ValidationError as exc:
        raise CommandError(wire_problems(exc, dotted=False)) from None
    if not customer.unique_ref_no:
        record = await client.customers.create(customer)
        created = terminal_text(str(record.customer_id))
        err(f"created {created} (no uniqueRefNo: a rerun creates another)")
    else:
        result = await client.customers.upsert(customer)
        record = result.customer
        done: str = result.outcome
        if result.changed:
            done += " " + ", ".join(wire_path(name, dotted=False) for name in result.changed)
        shown = terminal_text(f"{record.customer_id} ({customer.unique_ref_no})")
        err(f"{done}: {shown}")
    print(json_text(record.to_dict(), indent=2))
    return 0


def wire_problems(exc: ValidationError, *, dotted: bool) -> str:
    """A validation failure in the wire names the caller used, one problem per line."""
    lines = [f"  {wire_path(e.path, dotted=dotted)}: {e.message}" for e in exc.errors]
    return f"the customer is invalid ({count_words(len(lines), 'problem')}):\n" + "\n".join(lines)


# --------------------------------------------------------------------------- search

_TABLE_COLUMNS = (
    ("customerId", 16),
    ("legalName", 40),
    ("uniqueRefNo", 16),
    ("panOrGstin", 15),
    ("active", 6),
)


async def search(
    client: EnkashClient,
    search_filter: CustomerSearch,
    *,
    order_by: str | None,
    direction: str | None,
    page_size: int,
    max_items: int | None,
    fmt: str,
    output: str,
) -> int:
    """Stream matching customers to ``output``: JSON lines or CSV in EnKash's wire names
    (dotted paths into lists), or a table printed as rows arrive."""
    try:
        results = client.customers.search(
            search_filter,
            order_by=order_by,
            direction=direction,
            page_size=page_size,
            max_items=max_items,
        )
    except ValidationError as exc:
        raise CommandError(flag_problems(exc)) from None
    shown = 0
    with _open_output(output) as stream, tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        columns: dict[str, None] = {}  # every CSV column seen, in order of first sight
        if fmt == "table":
            stream.write("  ".join(name.ljust(width) for name, width in _TABLE_COLUMNS) + "\n")
        with progress("exporting", None) as bar:
            async for page in results.pages():
                total = page.records_count
                if total is not None and max_items is not None:
                    total = min(total, max_items)
                bar.set_total(total)
                for customer in page.items:
                    record = customer.to_dict()
                    if fmt == "jsonl":
                        stream.write(json_text(record) + "\n")
                    elif fmt == "csv":
                        # Spooled to disk: the header needs every record's columns.
                        cells = _csv.flatten(record)
                        columns.update(dict.fromkeys(cells))
                        spool.write(json.dumps(cells, ensure_ascii=False) + "\n")
                    else:
                        stream.write(_table_row(record) + "\n")
                shown += len(page)
                stream.flush()
                bar.advance(len(page))
        if fmt == "csv":
            writer = _csv.writer(stream, _csv.export_columns(columns))
            writer.writeheader()
            spool.seek(0)
            shown = stream.isatty()  # a file is data; a terminal gets no control character
            for line in spool:
                cells = json.loads(line)
                writer.writerow({k: terminal_text(v) for k, v in cells.items()} if shown else cells)
        elif fmt == "table":
            stream.write(f"{count_words(shown, 'customer')}\n")
    return 0


def _table_row(record: dict[str, Any]) -> str:
    cells = []
    for name, width in _TABLE_COLUMNS:
        value = record.get(name)
        text = terminal_text(
            ""
            if value is None
            else ("true" if value is True else "false" if value is False else str(value))
        )
        cells.append((text if len(text) <= width else text[: width - 1] + "…").ljust(width))
    return "  ".join(cells).rstrip()


class _open_output:
    def __init__(self, output: str) -> None:
        self._output = output
        self._stream: TextIO | None = None

    def __enter__(self) -> TextIO:
        if self._output == "-":
            return sys.stdout
        self._stream = Path(self._output).open("w", encoding="utf-8", newline="")
        return self._stream

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            self._stream.close()
