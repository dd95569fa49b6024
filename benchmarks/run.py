"""enkash_async against raw aiohttp, side by side in one run.

    python -m benchmarks            # or: python benchmarks/run.py [--quick]

Starts the fake EnKash in separate processes on 127.0.0.1, measures each scenario as the
median of several repetitions, prints one table of ratios, and writes
``benchmarks/results/latest.json`` with the machine, versions and raw figures. Needs the
``bench`` extra (pydantic, for the comparison the OpenAI and GitHub SDKs invite).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.minimal_server import minimal_server

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "latest.json"
SEARCH_PATH = "/api/v0/customer/search"
CREATE_PATH = "/api/v0/customer"


# --------------------------------------------------------------------------- servers


@contextmanager
def fake_server(customers: int, *extra: str) -> Iterator[dict[str, str]]:
    """A fake EnKash in its own process; yields its connection info."""
    from enkash_async.testing import FakeEnkashProcess

    options = ("--customers", str(customers), "--seed", "1", *extra)
    # A million records take a while to generate, and to let go of at SIGTERM.
    with FakeEnkashProcess(*options, ready_timeout=300, stop_timeout=30) as fake:
        yield fake.info


def median_of(repeats: int, run: Callable[[], Awaitable[float]]) -> tuple[float, list[float]]:
    """The median of ``repeats`` runs, after one untimed run that warms the server's caches."""
    asyncio.run(run())  # type: ignore[arg-type]
    samples = [asyncio.run(run()) for _ in range(repeats)]  # type: ignore[arg-type]
    return statistics.median(samples), samples


# --------------------------------------------------------------------------- 1. create


def create_bodies(count: int) -> list[Any]:
    from enkash_async.cli._commands import synthetic_creates

    return list(synthetic_creates(count, seed=11))


# Client-process CPU seconds per create of each run, by side: where the fake server is not
# the bottleneck (another machine, more cores), throughput follows these, not wall time.
CREATE_CPU: dict[str, list[float]] = {"raw": [], "client": []}


def compare_creates(info: dict[str, str], customers: list[Any], repeats: int) -> dict[str, Any]:
    """Raw aiohttp and the client creating ``customers`` at concurrency 64, alternated:
    medians of creates/s and of client-process CPU µs per create, and every sample."""
    CREATE_CPU["raw"].clear()
    CREATE_CPU["client"].clear()
    raw_rate, raw_samples, sdk_rate, sdk_samples = interleaved(
        repeats,
        lambda: create_raw(info, customers, 64),
        lambda: create_client(info, customers, 64),
    )
    return {
        "raw_rate": raw_rate,
        "client_rate": sdk_rate,
        "raw_per_s": raw_samples,
        "client_per_s": sdk_samples,
        "n": len(customers),
        "raw_cpu_us": statistics.median(CREATE_CPU["raw"]) * 1e6,
        "client_cpu_us": statistics.median(CREATE_CPU["client"]) * 1e6,
    }


async def create_raw(info: dict[str, str], customers: list[Any], concurrency: int) -> float:
    documents = [c.to_dict() for c in customers]  # a raw user's own dicts, encoded per request
    headers = {"Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"}
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def one(document: dict[str, Any]) -> None:
            async with (
                semaphore,
                session.post(
                    info["url"] + CREATE_PATH, data=json.dumps(document).encode(), headers=headers
                ) as response,
            ):
                reply = json.loads(await response.read())
                assert reply["payload"]["customerId"]

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(d) for d in documents))
        CREATE_CPU["raw"].append((time.process_time() - cpu) / len(documents))
        return len(documents) / (time.perf_counter() - started)


async def create_client(info: dict[str, str], customers: list[Any], concurrency: int) -> float:
    from enkash_async import EnkashClient

    semaphore = asyncio.Semaphore(concurrency)
    async with EnkashClient(info["url"], token=info["token"]) as client:

        async def one(customer: Any) -> None:
            async with semaphore:
                created = await client.customers.create(customer)
                assert created.customer_id

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(c) for c in customers))
        CREATE_CPU["client"].append((time.process_time() - cpu) / len(customers))
        return len(customers) / (time.perf_counter() - started)


# --------------------------------------------------------------------------- 2. streaming


async def _raw_pages(info: dict[str, str], total: int, page_size: int) -> AsyncIterator[list[Any]]:
    headers = {"Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        offset = 0
        while offset < total:
            params = {"offset": str(offset), "limit": str(page_size)}
            async with session.post(
                info["url"] + SEARCH_PATH, data=b"{}", params=params, headers=headers
            ) as response:
                data = json.loads(await response.read())["payload"]["data"]
            if not data:
                return
            yield data
            offset += len(data)


async def stream_raw(info: dict[str, str], total: int, page_size: int) -> float:
    started = time.perf_counter()
    count = 0
    async for page in _raw_pages(info, total, page_size):
        for _record in page:
            count += 1
    assert count == total, count
    return count / (time.perf_counter() - started)


async def stream_pydantic(info: dict[str, str], total: int, page_size: int) -> float:
    from benchmarks.pydantic_models import CustomerModel

    validate = CustomerModel.model_validate
    started = time.perf_counter()
    count = 0
    async for page in _raw_pages(info, total, page_size):
        for record in page:
            validate(record)
            count += 1
    assert count == total, count
    return count / (time.perf_counter() - started)


async def stream_client(
    info: dict[str, str], total: int, page_size: int, prefetch: int | None = None
) -> float:
    from enkash_async import EnkashClient

    async with EnkashClient(info["url"], token=info["token"]) as client:
        started = time.perf_counter()
        count = 0
        search = client.customers.search(page_size=page_size, max_items=total)
        if prefetch is not None:  # else the library's default
            search = client.customers.search(
                page_size=page_size, max_items=total, prefetch=prefetch
            )
        async for _customer in search:
            count += 1
    assert count == total, count
    return count / (time.perf_counter() - started)


async def collect_raw(info: dict[str, str], total: int, page_size: int) -> float:
    started = time.perf_counter()
    held = [record async for page in _raw_pages(info, total, page_size) for record in page]
    assert len(held) == total, len(held)
    return len(held) / (time.perf_counter() - started)


async def collect_client(info: dict[str, str], total: int, page_size: int) -> float:
    from enkash_async import EnkashClient

    async with EnkashClient(info["url"], token=info["token"]) as client:
        started = time.perf_counter()
        held = await client.customers.search(page_size=page_size, max_items=total).collect()
    assert len(held) == total, len(held)
    return len(held) / (time.perf_counter() - started)


# --------------------------------------------------------------------------- 4. memory


def peak_rss_streaming(info: dict[str, str], total: int) -> float:
    """Peak RSS in MiB of a fresh process that streams ``total`` customers."""
    code = (
        "import asyncio, resource, sys, json\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from benchmarks.run import stream_client\n"
        "info = json.loads(sys.argv[1])\n"
        "asyncio.run(stream_client(info, int(sys.argv[2]), 5000))\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(info), str(total), str(ROOT.parent)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.strip().splitlines()[-1]) / 1024


# --------------------------------------------------------------------------- 5. bulk under 429s


async def bulk(info: dict[str, str], customers: list[Any], *, adaptive: bool) -> dict[str, float]:
    from enkash_async import EnkashClient, RetryPolicy

    retry = RetryPolicy(max_attempts=50, deadline=None, max_backoff=1.0, max_retry_after=0.05)
    async with EnkashClient(
        info["url"],
        token=info["token"],
        retry=retry,
        max_concurrency=200,
        adaptive_concurrency=adaptive,
    ) as client:
        started = time.perf_counter()
        ok = 0
        async for result in client.customers.create_many(customers, concurrency=200):
            ok += result.customer is not None
        elapsed = time.perf_counter() - started
        return {
            "throughput": ok / elapsed,
            "rate_limited": float(client.stats.rate_limited),
            "created": float(ok),
        }


# --------------------------------------------------------------------------- main


SCENARIOS = (
    "create",
    "stream",
    "decode",
    "collect",
    "prefetch",
    "memory",
    "bulk",
    "sweep",
    "instructions",
)
# Scenarios run only when named: the prefetch sweep, and callgrind's instruction counts.
ON_REQUEST = frozenset({"sweep", "instructions"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only", nargs="+", choices=SCENARIOS, help="run these scenarios (default: all)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = 1 if quick else args.repeats
    only = set(args.only or SCENARIOS) - (ON_REQUEST if args.only is None else set())
    n_create = 500 if quick else 3000
    n_stream = 20_000 if quick else 200_000
    n_prefetch = 5_000 if quick else 30_000
    n_small, n_large = (10_000, 50_000) if quick else (100_000, 1_000_000)
    n_bulk = 2_000 if quick else 20_000
    raw: dict[str, Any] = {}
    rows: list[tuple[str, float, str, str]] = []

    if "create" in only:
        customers = create_bodies(n_create)
        with fake_server(0) as info:
            raw["create"] = compare_creates(info, customers, repeats)
        # The same against a server that spends next to nothing per request, so the
        # client's own cost shows rather than the fake EnKash's (the second setup).
        with minimal_server() as info:
            # A fast server leaves the figures noisier: more creates, more runs. Fewer
            # than 10,000 and one full collection more or less swings the ratio by 0.1.
            more = create_bodies(n_create * 10 // 3)
            raw["create_minimal_server"] = compare_creates(info, more, repeats + 2)
        # Again, the canned answer the seed's own createCustomer 200 example.
        with minimal_server(create="seed") as info:
            raw["create_minimal_server_seed"] = compare_creates(info, more, repeats + 2)
        for key, against in (
            ("create", ""),
            ("create_minimal_server", " vs a minimal server"),
            ("create_minimal_server_seed", " vs a minimal server, the seed's example reply"),
        ):
            figures = raw[key]
            rows.append(
                (
                    f"create{against}, concurrency 64: client / raw aiohttp",
                    figures["client_rate"] / figures["raw_rate"],
                    ">= 0.9",
                    f"{figures['client_rate']:,.0f} vs {figures['raw_rate']:,.0f} creates/s",
                )
            )
            rows.append(
                (
                    f"create{against}, client-process CPU per create: raw aiohttp / client",
                    figures["raw_cpu_us"] / figures["client_cpu_us"],
                    ">= 0.9",
                    f"{figures['raw_cpu_us']:.0f} vs {figures['client_cpu_us']:.0f} µs",
                )
            )

    if "instructions" in only:
        from benchmarks.instructions import per_create

        counts = per_create()
        raw["create_instructions"] = counts
        rows.append(
            (
                "create vs a minimal server, instructions per create: raw aiohttp / client",
                counts["raw"] / counts["client"],
                ">= 0.9",
                f"{counts['raw']:,.0f} vs {counts['client']:,.0f}",
            )
        )

    if "stream" in only:
        with fake_server(n_stream) as info:
            raw_rate, raw_samples, sdk_rate, sdk_samples = interleaved(
                repeats,
                lambda: stream_raw(info, n_stream, 5000),
                lambda: stream_client(info, n_stream, 5000),
            )
            pyd_rate, pyd_samples = median_of(
                repeats, lambda: stream_pydantic(info, n_stream, 5000)
            )
        raw["stream"] = {
            "raw_per_s": raw_samples,
            "client_per_s": sdk_samples,
            "pydantic_per_s": pyd_samples,
            "n": n_stream,
        }
        rows.append(
            (
                f"stream {n_stream:,} typed: client / raw aiohttp+json.loads dicts",
                sdk_rate / raw_rate,
                ">= 2.0",
                f"{sdk_rate:,.0f} vs {raw_rate:,.0f} records/s",
            )
        )
        rows.append(
            (
                f"stream {n_stream:,} typed: client / aiohttp+pydantic v2",
                sdk_rate / pyd_rate,
                ">= 3.0",
                f"{sdk_rate:,.0f} vs {pyd_rate:,.0f} records/s",
            )
        )

    if "stream" in only:
        # The client's own cost on each record set: pages pre-rendered by the minimal
        # server, so the records' shape, not the fake's work, is what differs.
        from benchmarks.decode import EVERY_QUIRK, SEED, SYNTHETIC

        for shape in (SYNTHETIC, SEED, EVERY_QUIRK):
            with minimal_server(search=shape, records=n_stream) as info:
                raw_rate, raw_samples, sdk_rate, sdk_samples = interleaved(
                    repeats,
                    lambda: stream_raw(info, n_stream, 5000),
                    lambda: stream_client(info, n_stream, 5000),
                )
            raw[f"stream_minimal_server {shape}"] = {
                "raw_per_s": raw_samples,
                "client_per_s": sdk_samples,
                "n": n_stream,
            }
            rows.append(
                (
                    f"stream {n_stream:,} typed, {shape} records, minimal server: "
                    "client / raw aiohttp+json.loads dicts",
                    sdk_rate / raw_rate,
                    ">= 2.0",
                    f"{sdk_rate:,.0f} vs {raw_rate:,.0f} records/s",
                )
            )

    if "decode" in only:
        from benchmarks import decode

        samples = decode.compare(decode.SHAPES, 5000, max(repeats, 3))
        medians = {shape: statistics.median(values) for shape, values in samples.items()}
        worst, worst_us = decode.worst_quirk(samples)
        synthetic_us = medians[decode.SYNTHETIC]
        raw["decode_us_per_record"] = samples
        rows.append(
            (
                "per-record decode, seed records / synthetic (CPU µs)",
                medians[decode.SEED] / synthetic_us,
                "<= 1.3",
                f"{medians[decode.SEED]:.2f} vs {synthetic_us:.2f} µs",
            )
        )
        rows.append(
            (
                "per-record decode, worst quirk set / synthetic (CPU µs)",
                worst_us / synthetic_us,
                "<= 1.3",
                f"{worst_us:.2f} ({worst.removeprefix('quirk: ')}) vs {synthetic_us:.2f} µs",
            )
        )

    if "collect" in only:
        with fake_server(n_stream) as info:
            raw_rate, raw_samples, sdk_rate, sdk_samples = interleaved(
                repeats,
                lambda: collect_raw(info, n_stream, 5000),
                lambda: collect_client(info, n_stream, 5000),
            )
        raw["collect"] = {"raw_per_s": raw_samples, "client_per_s": sdk_samples, "n": n_stream}
        rows.append(
            (
                f"collect() of {n_stream:,}: client / raw dicts",
                sdk_rate / raw_rate,
                ">= 1.0",
                f"{sdk_rate:,.0f} vs {raw_rate:,.0f} records/s",
            )
        )

    if "prefetch" in only:
        with fake_server(n_prefetch, "--latency-search", "0.05") as info:
            zero, zero_samples, four, four_samples = interleaved(
                repeats,
                lambda: stream_client(info, n_prefetch, 1000, 0),
                lambda: stream_client(info, n_prefetch, 1000, 4),
            )
        raw["prefetch"] = {
            "prefetch_0_per_s": zero_samples,
            "prefetch_4_per_s": four_samples,
            "n": n_prefetch,
            "latency_s": 0.05,
            "page_size": 1000,
        }
        rows.append(
            (
                "50 ms pages of 1000: prefetch=4 / prefetch=0",
                four / zero,
                ">= 3.0",
                f"{four:,.0f} vs {zero:,.0f} records/s",
            )
        )

    if "sweep" in only:
        # What the default prefetch is chosen by: customers/s for each value, two latencies.
        sweep: dict[str, dict[int, float]] = {}
        for latency, page_size, total in (("0.05", 1000, n_prefetch), ("0", 5000, n_stream)):
            with fake_server(total, "--latency-search", latency) as info:
                sweep[f"{latency}s pages of {page_size}"] = {
                    prefetch: median_of(
                        repeats,
                        lambda p=prefetch, n=total, size=page_size: stream_client(  # type: ignore[misc]
                            info, n, size, p
                        ),
                    )[0]
                    for prefetch in (0, 1, 2, 3, 4, 8)
                }
        raw["prefetch_sweep_per_s"] = sweep
        for name, rates in sweep.items():
            print(name, {p: round(r) for p, r in rates.items()})

    if "memory" in only:
        small_runs: list[float] = []
        large_runs: list[float] = []
        with fake_server(n_large) as info:
            for _ in range(repeats):  # interleaved: the machine's state weighs on both alike
                small_runs.append(peak_rss_streaming(info, n_small))
                large_runs.append(peak_rss_streaming(info, n_large))
        small, large = statistics.median(small_runs), statistics.median(large_runs)
        raw["memory"] = {
            "peak_rss_mib_small": small,
            "peak_rss_mib_large": large,
            "samples_small": small_runs,
            "samples_large": large_runs,
            "n_small": n_small,
            "n_large": n_large,
        }
        rows.append(
            (
                f"peak RSS streaming {n_large:,} / {n_small:,}",
                large / small,
                "<= 1.15",
                f"{large:.1f} vs {small:.1f} MiB",
            )
        )

    if "bulk" in only:
        bulk_inputs = create_bodies(n_bulk)
        # 20 ms per create, so requests overlap at the server as they would at EnKash.
        limited = ("--max-in-flight", "50", "--latency-create", "0.02")
        with fake_server(0, *limited) as info:
            adaptive = asyncio.run(bulk(info, bulk_inputs, adaptive=True))
        with fake_server(0, *limited) as info:
            fixed = asyncio.run(bulk(info, bulk_inputs, adaptive=False))
        raw["bulk_429"] = {"adaptive": adaptive, "fixed_200": fixed, "n": n_bulk}
        rows.append(
            (
                "create_many vs 429 above 50: adaptive / fixed 200 throughput",
                adaptive["throughput"] / fixed["throughput"],
                "> 1",
                f"{adaptive['throughput']:,.0f} vs {fixed['throughput']:,.0f} creates/s",
            )
        )
        rows.append(
            (
                "create_many vs 429 above 50: adaptive / fixed 200 429s",
                adaptive["rate_limited"] / max(1.0, fixed["rate_limited"]),
                "< 1",
                f"{adaptive['rate_limited']:,.0f} vs {fixed['rate_limited']:,.0f}",
            )
        )

    width = max((len(r[0]) for r in rows), default=8)
    print(f"{'scenario'.ljust(width)}  ratio  target   measured")
    for name, ratio, target, measured in rows:
        print(f"{name.ljust(width)}  {ratio:5.2f}  {target:7s}  {measured}")
    if args.only is not None and RESULTS.exists():
        # A partial run replaces only its own scenarios' figures in the recorded results.
        recorded = json.loads(RESULTS.read_text())
        for name, ratio, target, measured in rows:
            recorded["ratios"][name] = ratio
            recorded["targets"][name] = target
            recorded["measured"][name] = measured
        recorded["raw"].update(raw)
        recorded.setdefault("partial_runs", []).append(
            {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "only": args.only}
        )
        RESULTS.write_text(json.dumps(recorded, indent=2) + "\n")
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "quick": quick,
                "repeats": repeats,
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "processor": platform.processor() or _cpu_model(),
                },
                "versions": _versions(),
                "ratios": {name: ratio for name, ratio, _, _ in rows},
                "targets": {name: target for name, _, target, _ in rows},
                "measured": {name: measured for name, _, _, measured in rows},
                "raw": raw,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT.parent)}")
    return 0


def interleaved(
    repeats: int, first: Callable[[], Awaitable[float]], second: Callable[[], Awaitable[float]]
) -> tuple[float, list[float], float, list[float]]:
    """Medians of ``repeats`` runs of each, alternated so both see the same machine load
    (after one untimed run of each)."""
    asyncio.run(first())  # type: ignore[arg-type]
    asyncio.run(second())  # type: ignore[arg-type]
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        gc.collect()  # each run starts from the same collector state, not the last run's
        a.append(asyncio.run(first()))  # type: ignore[arg-type]
        gc.collect()
        b.append(asyncio.run(second()))  # type: ignore[arg-type]
    return statistics.median(a), a, statistics.median(b), b


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    names = ("enkash-async", "aiohttp", "attrs", "cattrs", "msgspec", "pydantic")
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT.parent))
    sys.exit(main())
