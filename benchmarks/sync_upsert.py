"""The upsert sync at scale, by hand: ``python -m benchmarks.sync_upsert``.

The real ``enkash-async customers import`` as a subprocess, against the fake EnKash as a
process of its own, with a checkpoint file; each import's peak RSS is its own
(``os.wait4``). For each size (``--small``, then ``--rows``), on a fresh fake:

1. seed: import N valid customers (5% with ``branchCodes``) into the empty fake;
2. edit 1% of rows (an address, a key contact's e-mail or a branch code, in turn) and
   rerun with ``--no-scan``: PATCHes counted by the fake (target: exactly N/100, no
   create), and the fields the PATCH bodies carried (``/_fake/stats`` ``patched_fields``:
   if they add up to the PATCH count and each field to its edits, every PATCH held only
   its changed field);
3. edit another 1% and rerun with the scan (the default), the same checks;
4. the unchanged file: rerun with ``--no-scan``, then with the scan (every row compared
   with EnKash's record, no create or PATCH), and the scan's pass over EnKash alone
   (``KnownRefs.load`` timed in this process).

The peak RSS ratio of the edited reruns, largest size over smallest, side by side in one
run (target <= 1.15). Figures go to stdout and ``benchmarks/results/sync_upsert.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from enkash_async import EnkashClient
from enkash_async.sync import KnownRefs
from enkash_async.testing import FakeEnkashProcess

RESULTS = Path(__file__).parent / "results" / "sync_upsert.json"
# Which field an edited row changes, by (i // 100) % 3.
KINDS = ("address", "customerKeyContacts", "branchCodes")
# Rows edited by each round: i % 100 == 0 in round 1, i % 100 == 20 in round 2 (both
# multiples of 20, so they all hold branchCodes).
EDITED = {1: 0, 2: 20}
_SUMMARY = re.compile(r"([\d,]+) created, ([\d,]+) updated, ([\d,]+) unchanged")


def _edited(i: int, rounds: int) -> bool:
    return any(i % 100 == rest for round_, rest in EDITED.items() if round_ <= rounds)


def _row(i: int, rounds: int) -> dict[str, Any]:
    """Row ``i`` of the file after ``rounds`` rounds of edits."""
    name = f"Row {i} Traders Pvt Ltd"
    kind = KINDS[(i // 100) % 3] if _edited(i, rounds) else None
    floor = ", Floor 2" if kind == "address" else ""
    email = (
        f"asha.rao.{i}@example.com" if kind == "customerKeyContacts" else f"asha.{i}@example.com"
    )
    row: dict[str, Any] = {
        "legalName": name,
        "uniqueRefNo": f"UPSERT-{i:08d}",
        "address": f"{i % 900 + 1} MG Road{floor}, Bengaluru",
        "pinCode": "560001",
        "state": "Karnataka",
        "customerKeyContacts": [
            {
                "name": "Asha Rao",
                "legalName": name,
                "mobile": "9876543210",
                "email": email,
                "deleted": False,
            }
        ],
    }
    if i % 20 == 0:
        row["branchCodes"] = [f"BR{i % 97:02d}" if kind != "branchCodes" else f"BX{i % 97:02d}"]
    return row


def _write(path: Path, rows: int, rounds: int) -> dict[str, int]:
    """Write the file; the edits of the latest round, per field."""
    edits = dict.fromkeys(KINDS, 0)
    with path.open("w", encoding="utf-8") as stream:
        for i in range(rows):
            stream.write(json.dumps(_row(i, rounds)) + "\n")
            if rounds and i % 100 == EDITED[rounds]:
                edits[KINDS[(i // 100) % 3]] += 1
    return {kind: n for kind, n in edits.items() if n}


def _delta(after: dict[str, Any], before: dict[str, Any], key: str) -> dict[str, int]:
    names = set(after[key]) | set(before[key])
    counts = {name: after[key].get(name, 0) - before[key].get(name, 0) for name in names}
    # fake_stats: this script's own reads of the counters.
    return {name: n for name, n in sorted(counts.items()) if n and name != "fake_stats"}


def _import(fake: FakeEnkashProcess, path: Path, log: Path, *flags: str) -> dict[str, Any]:
    """Run ``customers import``; its seconds, peak RSS, summary counts and the fake's
    request counts while it ran."""
    command = [sys.executable, "-m", "enkash_async", "customers", "import", str(path)]
    command += ["--checkpoint", str(path.with_suffix(".checkpoint.sqlite")), *flags]
    before = fake.stats()
    with log.open("wb") as output:
        started = time.monotonic()
        process = subprocess.Popen(command, env=fake.environ(), stdout=output, stderr=output)
        try:
            # wait4: this child's own peak RSS (RUSAGE_CHILDREN: the largest child's).
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # Ctrl-C: the import must not outlive the benchmark
            process.kill()
            process.wait()
            raise
        seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    after = fake.stats()
    text = log.read_text(errors="replace")
    summary = _SUMMARY.findall(text)
    if process.returncode != 0 or not summary:
        raise RuntimeError(f"{' '.join(command[3:])} exited {process.returncode}:\n{text[-3000:]}")
    created, updated, unchanged = (int(n.replace(",", "")) for n in summary[-1])
    return {
        "seconds": seconds,
        "rows_per_s": 0.0,  # set by the caller, who knows the rows
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "requests": _delta(after, before, "requests"),
        "patched_fields": _delta(after, before, "patched_fields"),
    }


async def _scan_pass(fake: FakeEnkashProcess) -> tuple[float, int]:
    """The scan alone, as the import runs it: seconds and customers read."""
    async with EnkashClient.from_env(
        fake.environ(), max_concurrency=100, max_connections=100
    ) as client:
        known = KnownRefs()
        try:
            started = time.monotonic()
            count = await known.load(client)
            return time.monotonic() - started, count
        finally:
            known.close()


def _check_edit(run: dict[str, Any], rows: int, edits: dict[str, int]) -> list[str]:
    """What an edited rerun did wrong (nothing: [])."""
    problems = []
    patches = run["requests"].get("update", 0)
    if patches != rows // 100:
        problems.append(f"{patches:,} PATCHes, not {rows // 100:,}")
    if run["requests"].get("create", 0) or run["created"]:
        problems.append(f"{run['requests'].get('create', 0):,} creates")
    if run["patched_fields"] != edits:
        problems.append(f"PATCH fields {run['patched_fields']} for edits {edits}")
    if run["updated"] != rows // 100:
        problems.append(f"{run['updated']:,} updated in the summary")
    return problems


def _print(label: str, run: dict[str, Any]) -> None:
    requests = ", ".join(f"{route} {n:,}" for route, n in run["requests"].items()) or "none"
    fields = run.get("fields_per_patch")
    print(
        f"  {label}: {run['seconds']:.1f} s, {run['rows_per_s']:,.0f} rows/s, "
        f"peak RSS {run['peak_rss_mib']:.1f} MiB; {run['created']:,} created, "
        f"{run['updated']:,} updated, {run['unchanged']:,} unchanged; requests: {requests}"
        + (f"; fields {run['patched_fields']} ({fields:.2f} a PATCH)" if fields else ""),
        flush=True,
    )


def _size(folder: Path, rows: int, problems: list[str]) -> dict[str, Any]:
    """Every measurement at one size, on a fresh fake."""
    path = folder / f"customers-{rows}.jsonl"
    results: dict[str, Any] = {"rows": rows}
    print(f"{rows:,} rows", flush=True)
    with FakeEnkashProcess(ready_timeout=120.0) as fake:

        def run(label: str, *flags: str) -> dict[str, Any]:
            measured = _import(fake, path, folder / f"{label}-{rows}.log", *flags)
            measured["rows_per_s"] = rows / measured["seconds"]
            patches = measured["requests"].get("update", 0)
            if patches:
                measured["fields_per_patch"] = sum(measured["patched_fields"].values()) / patches
            results[label] = measured
            _print(label, measured)
            return measured

        _write(path, rows, 0)
        seed = run("seed")
        if seed["created"] != rows or seed["requests"].get("create") != rows:
            problems.append(f"{rows:,}: seed created {seed['created']:,}")
        for round_, (label, flags) in enumerate(
            (("edited_no_scan", ("--no-scan",)), ("edited_scan", ())), start=1
        ):
            edits = _write(path, rows, round_)
            results[label + "_edits"] = edits
            problems += [
                f"{rows:,} {label}: {p}" for p in _check_edit(run(label, *flags), rows, edits)
            ]
        for label, flags in (("unchanged_no_scan", ("--no-scan",)), ("unchanged_scan", ())):
            measured = run(label, *flags)
            if measured["requests"].get("create") or measured["requests"].get("update"):
                problems.append(f"{rows:,} {label}: sent {measured['requests']}")
            if measured["unchanged"] != rows:
                problems.append(f"{rows:,} {label}: {measured['unchanged']:,} unchanged")
        seconds, read = asyncio.run(_scan_pass(fake))
        results["scan_pass"] = {"seconds": seconds, "customers": read}
        print(f"  the scan's pass alone: {read:,} customers in {seconds:.1f} s", flush=True)
        scan, no_scan = results["unchanged_scan"], results["unchanged_no_scan"]
        results["scan_over_no_scan"] = scan["seconds"] / no_scan["seconds"]
        results["scan_minus_no_scan_s"] = scan["seconds"] - no_scan["seconds"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync_upsert")
    parser.add_argument("--rows", type=int, default=1_000_000, help="the large size")
    parser.add_argument("--small", type=int, default=100_000, help="the size RSS is compared to")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    args = parser.parse_args(argv)
    problems: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="enkash-upsert-") as tmp:
        small = _size(Path(tmp), args.small, problems)
        large = _size(Path(tmp), args.rows, problems)
    ratios = {
        label: large[label]["peak_rss_mib"] / small[label]["peak_rss_mib"]
        for label in ("edited_no_scan", "edited_scan", "unchanged_no_scan", "unchanged_scan")
    }
    for label, ratio in ratios.items():
        print(
            f"peak RSS {args.rows:,} / {args.small:,} rows, {label}: {ratio:.2f} (target <= 1.15)"
        )
    for problem in problems:
        print(f"NOT MET: {problem}")
    args.out.write_text(
        json.dumps(
            {
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_at_end": os.getloadavg(),
                },
                "minutes": (time.monotonic() - started) / 60,
                "sizes": [small, large],
                "peak_rss_ratio": ratios,
                "problems": problems,
            },
            indent=2,
        )
        + "\n"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
