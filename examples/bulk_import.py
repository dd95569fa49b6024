"""A bulk sync worker: create every customer of a CSV file in EnKash, each exactly once.

Each row becomes a ``CustomerCreate`` keyed by your own id (``unique_ref_no``), so a
create whose reply is lost is looked up instead of sent twice. Rows that fail checks
are reported and never sent; the rest go through ``create_many``, which runs creates
concurrently within the client's limits and reports one result per row::

    export ENKASH_BASE_URL=... ENKASH_CLIENT_ID=... ENKASH_CLIENT_SECRET=... \\
        ENKASH_USERNAME=... ENKASH_PASSWORD=...
    python examples/bulk_import.py examples/customers.csv --concurrency 16

CSV columns: unique_ref_no, legal_name, contact_name, mobile, email, pan_or_gstin.
Exit status: 0 when every row was created, 1 when any was rejected or failed.
(``enkash-async customers import`` adds a checkpoint so a rerun after a crash resumes.)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Iterator
from pathlib import Path

from enkash_async import CustomerCreate, EnkashClient, KeyContactCreate, ValidationError


def customers_from_csv(path: Path, rejected: list[str]) -> Iterator[CustomerCreate]:
    """Each valid row as a ``CustomerCreate``; each invalid one noted in ``rejected``."""
    with path.open(newline="", encoding="utf-8") as file:
        for line, row in enumerate(csv.DictReader(file), start=2):
            try:
                yield CustomerCreate(
                    legal_name=row["legal_name"],
                    customer_key_contacts=[
                        KeyContactCreate(
                            name=row["contact_name"],
                            legal_name=row["contact_name"],
                            mobile=row["mobile"],
                            email=row["email"] or None,
                        )
                    ],
                    pan_or_gstin=row["pan_or_gstin"] or None,
                    unique_ref_no=row["unique_ref_no"],
                )
            except ValidationError as exc:
                rejected.append(f"line {line}: {', '.join(exc.fields)}")


async def sync(path: Path, concurrency: int) -> int:
    """Create the customers of ``path``; print a summary; return the exit status."""
    rejected: list[str] = []
    created = failed = 0
    async with EnkashClient.from_env() as client:
        rows = customers_from_csv(path, rejected)
        results = client.customers.create_many(
            rows, concurrency=concurrency, require_unique_ref=True
        )
        async for result in results:
            if result.ok:
                created += 1
            else:
                failed += 1
                ref = result.input.unique_ref_no
                print(f"{ref}: {result.error}", file=sys.stderr)
    for problem in rejected:
        print(f"rejected {problem}", file=sys.stderr)
    print(f"{created} created, {failed} failed, {len(rejected)} rejected")
    return 0 if not failed and not rejected else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="the customers, one a row")
    parser.add_argument("--concurrency", type=int, default=16, help="creates at once (16)")
    args = parser.parse_args()
    return asyncio.run(sync(args.csv, args.concurrency))


if __name__ == "__main__":
    sys.exit(main())
