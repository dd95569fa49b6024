"""A bulk sync worker: make EnKash hold every customer of a CSV file, each exactly once.

Each row becomes a ``CustomerCreate`` keyed by your own id (``unique_ref_no``) and goes
through ``customers.upsert``: created when EnKash has no customer with that reference
(a create whose reply is lost is looked up, not sent twice), else only the fields that
differ are updated, so running the script again stores nothing twice. Rows that fail
checks are reported and never sent; ``--concurrency`` rows are in flight at once::

    export ENKASH_BASE_URL=... ENKASH_CLIENT_ID=... ENKASH_CLIENT_SECRET=... \\
        ENKASH_USERNAME=... ENKASH_PASSWORD=...
    python examples/bulk_import.py examples/customers.csv --concurrency 16

The file is in the format ``customers search --format csv`` writes and ``customers
import`` reads (docs/sync.md, "Import file format"): EnKash's wire names as columns,
dotted paths into lists (``uniqueRefNo,legalName,customerKeyContacts.0.mobile,...``),
read by ``enkash_async.sync.read_file``, which also reads JSON lines.
Exit status: 0 when every row is in EnKash, 1 when any was rejected or failed.
(``enkash-async customers import`` adds a checkpoint so a rerun after a crash resumes.)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from enkash_async import CustomerCreate, EnkashClient, EnkashError
from enkash_async.sync import read_file


def customers_from_file(path: Path, rejected: list[str]) -> Iterator[CustomerCreate]:
    """Each valid row as a ``CustomerCreate``; each invalid one noted in ``rejected``."""
    for row in read_file(str(path)):
        if row.customer is None:
            rejected.append(f"line {row.line}: {'; '.join(row.problems)}")
        else:
            yield row.customer


async def sync(path: Path, concurrency: int) -> int:
    """Upsert the customers of ``path``; print a summary; return the exit status."""
    rejected: list[str] = []
    outcomes: Counter[str] = Counter()
    async with EnkashClient.from_env() as client:
        rows = customers_from_file(path, rejected)

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
    parser.add_argument("file", type=Path, help="the customers: a .csv or .jsonl file")
    parser.add_argument("--concurrency", type=int, default=16, help="rows in flight at once (16)")
    args = parser.parse_args()
    try:
        return asyncio.run(sync(args.file, args.concurrency))
    except (EnkashError, OSError) as exc:  # no file, not a .csv/.jsonl, no header, no login
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
