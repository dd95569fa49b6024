"""What observability costs a create (issue 20): client-process CPU per create against the
minimal server answering the seed's create example, three ways, alternated in one process:

* ``off``: the default client, no hooks, the OpenTelemetry API with its no-op providers;
* ``stripped``: the same client with the call observer made a no-op (what a client without
  hooks, spans or metrics would cost), the baseline the issue's "within 2%" is measured on;
* ``sdk``: ``OtelHooks`` on an OpenTelemetry SDK tracer and meter provider exporting to
  memory (needs ``opentelemetry-sdk``; skipped without it).

    python -m benchmarks.observability [--creates 5000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.minimal_server import minimal_server
from benchmarks.run import create_bodies
from enkash_async import EnkashClient
from enkash_async._hooks import Observer

CONCURRENCY = 64


@contextlib.contextmanager
def _stripped() -> Iterator[None]:
    """The observer answers "nothing observes" without looking."""
    begin, batch = Observer.begin, Observer.begin_batch
    Observer.begin = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
    Observer.begin_batch = lambda self, *args, **kwargs: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Observer.begin, Observer.begin_batch = begin, batch  # type: ignore[method-assign]


def _sdk_hooks() -> Any | None:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
    except ImportError:
        return None
    from enkash_async import OtelHooks

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return OtelHooks(tracer_provider=tracer_provider, meter_provider=meter_provider)


async def _cpu_per_create(info: dict[str, str], customers: list[Any], hooks: Any) -> float:
    semaphore = asyncio.Semaphore(CONCURRENCY)
    async with EnkashClient(info["url"], token=info["token"], hooks=hooks) as client:

        async def one(customer: Any) -> None:
            async with semaphore:
                assert (await client.customers.create(customer)).customer_id

        await asyncio.gather(*(one(c) for c in customers[:200]))  # connections warm
        gc.collect()
        cpu = time.process_time()
        await asyncio.gather(*(one(c) for c in customers))
        return (time.process_time() - cpu) / len(customers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    customers = create_bodies(args.creates)
    sdk = _sdk_hooks()
    ways: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
        "off": contextlib.nullcontext,
        "stripped": _stripped,
    }
    if sdk is not None:
        ways["sdk"] = contextlib.nullcontext
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    with minimal_server(create="seed") as info:
        for _ in range(args.repeats):
            for way, context in ways.items():
                with context():
                    hooks = sdk if way == "sdk" else None
                    cpu[way].append(asyncio.run(_cpu_per_create(info, customers, hooks)))
    median = {way: statistics.median(times) * 1e6 for way, times in cpu.items()}
    for way, value in median.items():
        print(f"{way:9s} {value:7.1f} µs CPU per create (median of {args.repeats})")
    print(f"off / stripped: {median['off'] / median['stripped']:.3f} (target <= 1.02)")
    if "sdk" in median:
        extra = median["sdk"] - median["off"]
        print(f"sdk / off: {median['sdk'] / median['off']:.3f} ({extra:+.1f} µs a create)")
    else:
        print("sdk: not measured (pip install opentelemetry-sdk)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
