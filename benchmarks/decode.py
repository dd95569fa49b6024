"""Per-record cost of reading a search page, by hand: ``python -m benchmarks.decode``.

One page of 5,000 synthetic customers is built the way the fake server writes it
(each record's JSON joined into the envelope), then read the way the client streams
it: the envelope once, each record when reached. Printed: µs per record, the minimum
and median of CPU time (``time.process_time``) over the repeats, for the client and,
interleaved in the same run, for ``json.loads`` into plain dicts. ``--profile`` runs
cProfile over one pass instead.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import time
from collections.abc import Callable

from enkash_async import _wire
from enkash_async._fast import dumps, paused_gc
from enkash_async.models import Customer
from enkash_async.testing._data import IdFactory, synthesize


def page_body(count: int, seed: int = 7) -> bytes:
    """A search reply of ``count`` customers, as the fake server writes it."""
    with paused_gc():
        records = synthesize(count, seed, IdFactory(seed))
    head = b'{"errorResponse":null,"payload":{"data":['
    tail = f'],"recordsCount":{count}}},"response_code":0,"response_message":"OK"}}'.encode()
    return head + b",".join(dumps(record) for record in records) + tail


def read_client(body: bytes) -> int:
    """Stream the page through the client's reader; the number of customers read."""
    read = _wire.record_reader(Customer, "CustomerResponse")
    records, _ = _wire.page_records_from_wire(_wire.read_search_reply(body)["payload"], Customer)
    count = 0
    for record in records:
        read(record)
        count += 1
    return count


def read_dicts(body: bytes) -> int:
    """The baseline: the page parsed into plain dicts by ``json.loads``."""
    count = 0
    for _ in json.loads(body)["payload"]["data"]:
        count += 1
    return count


def per_record_us(read: Callable[[bytes], int], body: bytes) -> float:
    """CPU µs per record for one pass of ``read`` over ``body``."""
    start = time.process_time()
    count = read(body)
    return (time.process_time() - start) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    body = page_body(args.records)
    read_client(body)  # warm: the reader's decoders and constructors are built once
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(read_client, body)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        return 0
    samples: dict[str, list[float]] = {"client": [], "json.loads dicts": []}
    for _ in range(args.repeats):
        samples["client"].append(per_record_us(read_client, body))
        samples["json.loads dicts"].append(per_record_us(read_dicts, body))
    print(f"{args.records:,} records, {len(body) / 1e6:.2f} MB, {args.repeats} interleaved runs")
    for name, values in samples.items():
        print(f"{name:>18}: {min(values):5.2f} min / {statistics.median(values):5.2f} median µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
