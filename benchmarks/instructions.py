"""Instructions per create, client against raw aiohttp, counted by valgrind's callgrind.

Wall-clock and CPU-time ratios move with whatever else the machine runs; an instruction
count does not. Each side runs in a process of its own under callgrind, sending ``small``
and then ``large`` creates to the minimal server (benchmarks/minimal_server.py); the
difference of the two counts, divided by ``large - small``, is what one create costs,
imports and start-up cancelled out. Needs ``valgrind`` on PATH; about 3 minutes.

    python -m benchmarks.instructions
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys

from benchmarks.minimal_server import minimal_server

SMALL, LARGE = 300, 1500


def _count(side: str, creates: int, url: str) -> int:
    """Instructions callgrind counted for a process sending ``creates`` creates."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--child",
        side,
        str(creates),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind gave no count: {done.stderr[-400:]}")
    return int(found.group(1))


def per_create() -> dict[str, float]:
    """Instructions per create for ``raw`` aiohttp and the ``client``."""
    with minimal_server() as info:
        return {
            side: (_count(side, LARGE, info["url"]) - _count(side, SMALL, info["url"]))
            / (LARGE - SMALL)
            for side in ("raw", "client")
        }


def _child(side: str, creates: int, url: str) -> None:
    from benchmarks.run import create_bodies, create_client, create_raw

    customers = create_bodies(LARGE)[:creates]  # the same inputs made for every count
    send = create_raw if side == "raw" else create_client
    asyncio.run(send({"url": url, "token": "minimal-server"}, customers, 64))


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH; nothing measured")
        return 1
    counts = per_create()
    print(
        f"instructions per create: raw aiohttp {counts['raw']:,.0f}, client "
        f"{counts['client']:,.0f}; raw / client {counts['raw'] / counts['client']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
