"""Per-record cost of reading a search page, by record set: ``python -m benchmarks.decode``.

Three record sets, side by side in one run:

- ``synthetic``: the fake EnKash's customers (each record's JSON joined into the envelope);
- ``seed``: the ``searchCustomer`` and ``createCustomer`` 200 examples of EnKash's own
  pages (``tests/fixtures/seeds/``), ids and names varied;
- one set per documented quirk (``quirk: ...``): the seed records with that shape applied
  (a string ``deleted``, each ``LocalTime`` form, numbers where strings belong, nulls,
  unknown enum values), and ``every quirk``, the quirks in turn.

Each page is read the way the client streams it: the envelope once, each record when
reached, by a reader made for the pass. Printed: µs per record, the minimum and median
of CPU time (``time.process_time``) over the repeats, the ratio of medians to the
synthetic set, and, interleaved in the same run, ``json.loads`` into plain dicts.
``--profile SHAPE`` runs cProfile over one pass instead.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from enkash_async import _wire
from enkash_async._fast import dumps, paused_gc
from enkash_async.models import Customer
from enkash_async.testing._data import IdFactory, synthesize

# The seed examples and their quirks are the test suite's fixtures, kept in one place.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _seed_records import QUIRKS, quirky_record, seed_record

SYNTHETIC, SEED, EVERY_QUIRK = "synthetic", "seed", "every quirk"
QUIRK_SHAPES = tuple(f"quirk: {name}" for name in QUIRKS)
#: Every record set, in the order printed.
SHAPES = (SYNTHETIC, SEED, *QUIRK_SHAPES, EVERY_QUIRK)
_QUIRK_NAMES = tuple(QUIRKS)


def records(shape: str, count: int, first: int = 0) -> list[dict[str, Any]]:
    """``count`` customers of record set ``shape`` as wire dicts, numbered from ``first``."""
    if shape == SYNTHETIC:
        with paused_gc():
            return synthesize(count, 7 + first, IdFactory(7 + first), first + 1)
    numbers = range(first, first + count)
    if shape == SEED:
        return [seed_record(n) for n in numbers]
    if shape == EVERY_QUIRK:
        return [quirky_record(n, _QUIRK_NAMES[n % len(_QUIRK_NAMES)]) for n in numbers]
    quirk = shape.removeprefix("quirk: ")
    if quirk not in QUIRKS:
        raise ValueError(f"no record set {shape!r}; one of {', '.join(SHAPES)}")
    return [quirky_record(n, quirk) for n in numbers]


def page_body(records: Iterable[dict[str, Any]], records_count: int) -> bytes:
    """A successful search reply holding ``records``, as EnKash writes one."""
    head = b'{"errorResponse":null,"payload":{"data":['
    tail = f'],"recordsCount":{records_count}}},"response_code":0,"response_message":"OK"}}'
    return head + b",".join(dumps(record) for record in records) + tail.encode()


def read_client(body: bytes) -> int:
    """Stream the page through a fresh client reader; the number of customers read."""
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


DICTS = "json.loads dicts (synthetic)"


def compare(shapes: Iterable[str], count: int, repeats: int) -> dict[str, list[float]]:
    """CPU µs per record of each record set (and of ``json.loads`` dicts of the synthetic
    page), every repeat a pass over each set in turn, after one untimed pass."""
    bodies = {shape: page_body(records(shape, count), count) for shape in shapes}
    for body in bodies.values():
        read_client(body)  # warm: decoders and constructors are built once per shape
    samples: dict[str, list[float]] = {shape: [] for shape in bodies}
    samples[DICTS] = []
    baseline = bodies.get(SYNTHETIC) or next(iter(bodies.values()))
    for _ in range(repeats):
        for shape, body in bodies.items():
            samples[shape].append(per_record_us(read_client, body))
        samples[DICTS].append(per_record_us(read_dicts, baseline))
    return samples


def worst_quirk(samples: dict[str, list[float]]) -> tuple[str, float]:
    """The quirk set whose median is the highest, and that median."""
    quirks = {shape: statistics.median(v) for shape, v in samples.items() if shape in QUIRK_SHAPES}
    shape = max(quirks, key=quirks.__getitem__)
    return shape, quirks[shape]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=SHAPES, metavar="SHAPE")
    parser.add_argument("--profile", choices=SHAPES, metavar="SHAPE")
    args = parser.parse_args(argv)
    if args.profile:
        body = page_body(records(args.profile, args.records), args.records)
        read_client(body)
        profiler = cProfile.Profile()
        profiler.runcall(read_client, body)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        return 0
    shapes = list(dict.fromkeys(itertools.chain([SYNTHETIC], args.shapes)))
    samples = compare(shapes, args.records, args.repeats)
    print(f"{args.records:,} records a page, {args.repeats} interleaved passes (CPU µs/record)")
    synthetic = statistics.median(samples[SYNTHETIC])
    width = max(map(len, samples))
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"{name:>{width}}: {min(values):6.2f} min {median:6.2f} median"
            f"  {median / synthetic:5.2f} x synthetic"
        )
    if any(shape in QUIRK_SHAPES for shape in samples):
        shape, median = worst_quirk(samples)
        print(f"worst quirk set / synthetic: {median / synthetic:.2f} ({shape})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
