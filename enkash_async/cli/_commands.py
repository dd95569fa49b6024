"""What each CLI command does, on top of the public client."""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TextIO

from enkash_async import (
    AmbiguousCreateError,
    Customer,
    CustomerCreate,
    CustomerSearch,
    EnkashClient,
    KeyContact,
    Page,
    Reminder,
    ValidationError,
)
from enkash_async.cli._files import Checkpoint, InputError, check_input, read_rows
from enkash_async.cli._ui import err, progress, table

__all__ = ["create", "demo", "import_file", "search", "serve", "synthetic_creates"]


# --------------------------------------------------------------------------- demo


def synthetic_creates(count: int, seed: int) -> Iterator[CustomerCreate]:
    """``count`` realistic, valid ``CustomerCreate``s with refs ``DEMO-0000001``…, made lazily."""
    from enkash_async.testing import synthetic_customers

    for number, wire in enumerate(synthetic_customers(count, seed), start=1):
        contacts = [
            {
                "name": c["name"], "legalName": c["name"],
                "mobile": c["mobile"], "email": c.get("email"), "deleted": False,
            }
            for c in wire.get("customerKeyContacts") or []
        ]
        fields = {
            "legalName": wire["legalName"], "customerKeyContacts": contacts,
            "panOrGstin": wire.get("panOrGstin"), "ifsc": wire.get("ifsc"),
            "accountNumber": wire.get("accountNumber"), "pinCode": wire.get("pinCode"),
            "state": wire.get("state"), "address": wire.get("address"),
            "contactNumber": wire.get("contactNumber"), "uniqueRefNo": f"DEMO-{number:07d}",
        }
        yield CustomerCreate.from_dict({k: v for k, v in fields.items() if v is not None})


async def demo(*, customers: int, concurrency: int, page_size: int, seed: int,
               fault_rate: float) -> int:
    """Create ``customers`` on an embedded fake EnKash, stream them back, check none was
    lost or duplicated, and print a summary. Returns 1 if any was lost or duplicated."""
    from enkash_async.testing import FakeEnkash, Fault

    async with FakeEnkash(seed=seed) as server:
        if fault_rate > 0:
            for status in (429, 503):  # failures EnKash never processed: safe to retry
                server.inject(Fault.status(status, retry_after=0), route="create",
                              rate=fault_rate / 2)
            server.inject(Fault.status(502), route="search", rate=fault_rate)
        async with EnkashClient(
            server.url, credentials=server.credentials,
            max_concurrency=max(100, concurrency), max_connections=max(100, concurrency),
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
        err(f"FAILED: {lost} customer(s) lost, {duplicated} duplicated")
        return 1
    return 0


def _ms(samples: list[float], quantile: float) -> str:
    if len(samples) < 2:
        return "-"
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"{cuts[round(quantile * 100) - 1] * 1000:.1f} ms"


# --------------------------------------------------------------------------- serve


async def serve(host: str, port: int, customers: int, seed: int) -> int:
    """Run the fake EnKash until interrupted, printing its URL and credentials as JSON."""
    from enkash_async.testing import FakeEnkash
    from enkash_async.testing import serve as serve_fake

    def ready(server: FakeEnkash) -> None:
        # The real address (a --port of 0 is replaced by the port picked), as one JSON
        # line a script can read; the credentials are the fake server's own, not secrets.
        sys.stdout.write(json.dumps(server.connection_info()) + "\n")
        sys.stdout.flush()
        err(f"fake EnKash with {customers:,} customers listening on {server.url} "
            "(Ctrl-C stops it)")

    await serve_fake(host=host, port=port, customers=customers, seed=seed, ready=ready)
    return 0


# --------------------------------------------------------------------------- create


async def create(client: EnkashClient, source: str) -> int:
    """Create the customer in a JSON file (or stdin) and print EnKash's record as JSON."""
    name = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(0, f"{name}: is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(0, f"{name}: not valid JSON ({exc})") from None
    customer = await client.customers.create(CustomerCreate.from_dict(data))
    print(json.dumps(customer.to_dict(), ensure_ascii=False, indent=2))
    return 0


# --------------------------------------------------------------------------- search


def _row_fields() -> list[str]:
    template = Page(
        items=[Customer(customer_key_contacts=[KeyContact()], customer_reminders=[Reminder()])],
        offset=0, limit=1, records_count=1, next_offset=None,
    )
    return list(template.to_rows()[0])


async def search(
    client: EnkashClient, search_filter: CustomerSearch, *, order_by: str | None,
    direction: str | None, page_size: int, max_items: int | None, fmt: str, output: str,
) -> int:
    """Stream matching customers to ``output`` as JSON lines, CSV or a table."""
    results = client.customers.search(
        search_filter, order_by=order_by, direction=direction, page_size=page_size,
        max_items=max_items,
    )
    with _open_output(output) as stream:
        writer: Any = None
        if fmt == "csv":
            writer = csv.DictWriter(stream, fieldnames=_row_fields(), extrasaction="ignore")
            writer.writeheader()
        shown: list[dict[str, Any]] = []
        with progress("exporting", None) as bar:
            async for page in results.pages():
                total = page.records_count
                if total is not None and max_items is not None:
                    total = min(total, max_items)
                bar.set_total(total)
                if fmt == "jsonl":
                    for customer in page.items:
                        stream.write(json.dumps(customer.to_dict(), ensure_ascii=False) + "\n")
                elif fmt == "csv":
                    writer.writerows(page.to_rows())
                else:
                    shown.extend(page.to_rows())
                bar.advance(len(page))
        if fmt == "table":
            columns = ["customer_id", "legal_name", "unique_ref_no", "pan_or_gstin", "active"]
            table(f"{len(shown)} customers", columns,
                  [[row.get(c) for c in columns] for row in shown], stream)
    return 0


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


# --------------------------------------------------------------------------- import


async def import_file(client: EnkashClient, path: str, *, concurrency: int, rejects: str,
                      checkpoint: str) -> int:
    """Create every row of a CSV/JSONL file, skipping rows a checkpoint says are done.

    Rows that cannot be built or that EnKash refuses go to ``rejects`` with the reason
    (rewritten each run: a rerun tries those rows again). Returns 1 if any row was rejected.
    """
    check_input(path)  # a missing or unusable file leaves no rejects or checkpoint behind
    progress_file = Checkpoint(Path(checkpoint))
    rows_of: dict[int, int] = {}  # create_many index -> file row
    counts: Counter[str] = Counter()
    with Path(rejects).open("w", encoding="utf-8") as rejected:

        def reject(row: int, reason: str, errors: list[str] | None = None) -> None:
            counts["rejected"] += 1
            entry = {"row": row, "reason": reason, "errors": errors or []}
            rejected.write(json.dumps(entry, ensure_ascii=False) + "\n")
            rejected.flush()

        async def inputs() -> AsyncIterator[CustomerCreate]:
            for row, data in read_rows(path):
                if row in progress_file.done:
                    counts["skipped"] += 1
                    continue
                if isinstance(data, InputError):
                    reject(row, data.message)
                    continue
                try:
                    customer = CustomerCreate.from_dict(data)
                except ValidationError as exc:
                    reject(row, "invalid", [str(e) for e in exc.errors])
                    continue
                if row in progress_file.uncertain:
                    if customer.unique_ref_no is None:
                        reject(row, "an earlier run sent this row but stopped before EnKash "
                               "answered; without a uniqueRefNo it cannot be checked, so it "
                               "is not sent again")
                        continue
                    found = await _already_created(client, customer)
                    if found is not None:
                        counts["reconciled"] += 1
                        progress_file.mark_done(row, found.customer_id)
                        continue
                progress_file.mark_sent(row, customer.unique_ref_no)
                rows_of[counts["queued"]] = row
                counts["queued"] += 1
                yield customer

        try:
            with progress(f"importing {path}", None) as bar:
                async for result in client.customers.create_many(
                    inputs(), concurrency=concurrency, ordered=False
                ):
                    row = rows_of.pop(result.index)
                    if result.customer is not None:
                        counts["created"] += 1
                        progress_file.mark_done(row, result.customer.customer_id)
                    else:
                        if not isinstance(result.error, AmbiguousCreateError):
                            progress_file.mark_failed(row)  # EnKash surely does not have it
                        reject(row, str(result.error))
                    bar.advance()
        finally:
            progress_file.close()
    err(
        f"{counts['created']} created, {counts['rejected']} rejected (see {rejects}), "
        f"{counts['skipped']} already done, {counts['reconciled']} found from an earlier run"
    )
    return 1 if counts["rejected"] else 0


async def _already_created(client: EnkashClient, customer: CustomerCreate) -> Customer | None:
    """The customer a row an earlier run sent without seeing the reply became, if any."""
    return await client.customers.search(
        CustomerSearch(unique_ref_no=customer.unique_ref_no), max_items=1
    ).first()

