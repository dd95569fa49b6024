"""A bulk sync worker: make EnKash hold every customer of a CSV file, each exactly once.

Each row becomes a ``CustomerCreate`` keyed by your own id (``unique_ref_no``) and goes
through ``customers.upsert``: created when EnKash has no customer with that reference
(a create whose reply is lost is looked up, not sent twice), else only the fields that
differ are updated, so running the script again stores nothing twice. Rows that fail
checks are reported and never sent; ``--concurrency`` rows are in flight at once::

    export ENKASH_BASE_URL=... ENKASH_CLIENT_ID=... ENKASH_CLIENT_SECRET=... \\
        ENKASH_USERNAME=... ENKASH_PASSWORD=...
    python examples/bulk_import.py examples/customers.csv --concurrency 16

CSV columns: unique_ref_no, legal_name, contact_name, mobile, email, pan_or_gstin.
Exit status: 0 when every row is in EnKash, 1 when any was rejected or failed.
(``enkash-async customers import`` adds a checkpoint so a rerun after a crash resumes.)
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from enkash_async import (
    CustomerCreate,
    EnkashClient,
    EnkashError,
    KeyContactCreate,
    ValidationError,
)


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
    """Upsert the customers of ``path``; print a summary; return the exit status."""
    rejected: list[str] = []
    outcomes: Counter[str] = Counter()
    async with EnkashClient.from_env() as client:
        rows = customers_from_csv(path, rejected)

        async def worker() -> None:
            # Workers share one iterator: each takes the next row when it is free.
            for row in rows:
                try:
                    result = await client.customers.upsert(row)
                except EnkashError as exc:
                    outcomes["failed"] += 1
                    print(f"{row.unique_ref_no}: {exc}", file=sys.stderr)
                else:
                    outcomes[result.outcome] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    for problem in rejected:
        print(f"rejected {problem}", file=sys.stderr)
    counts = ", ".join(f"{outcomes[k]} {k}" for k in ("created", "updated", "unchanged", "failed"))
    print(f"{counts}, {len(rejected)} rejected")
    return 0 if not outcomes["failed"] and not rejected else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="the customers, one a row")
    parser.add_argument("--concurrency", type=int, default=16, help="rows in flight at once (16)")
    args = parser.parse_args()
    return asyncio.run(sync(args.csv, args.concurrency))


if __name__ == "__main__":
    sys.exit(main())
