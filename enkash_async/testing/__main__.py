"""``python -m enkash_async.testing``: run a fake EnKash until SIGINT/SIGTERM.

On start it prints one JSON line to stdout, ``{"url", "client_id", "client_secret",
"username", "password", "token"}``, so a script or benchmark can connect.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from ._server import print_connection_info, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m enkash_async.testing", description="Run a fake EnKash server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--customers", type=int, default=0, help="synthetic customers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="seconds")
    parser.add_argument("--token-style", choices=("old", "new"), default="old")
    for route in ("token", "create", "search"):
        parser.add_argument(
            f"--latency-{route}",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help=f"delay added to every {route} request",
        )
    parser.add_argument("--max-in-flight", type=int, default=None, help="429 beyond this")
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="RPS",
        help="429 to create/search requests beyond this many per second",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="inject a mix of faults (after-commit included) into this share of requests "
        "on every route",
    )
    parser.add_argument(
        "--fault-seed",
        type=int,
        default=None,
        metavar="N",
        help="seed of the fault draws (default: --seed); the same seed and requests give "
        "the same faults",
    )
    parser.add_argument(
        "--accept-unknown-fields",
        action="store_true",
        help="ignore request body fields the schema does not have, as a Spring server "
        "that does not fail on unknown properties would (default: a 400 naming them)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and serve until signalled; the exit status."""
    args = _parser().parse_args(argv)
    latency = {
        route: delay
        for route, delay in (
            ("token", args.latency_token),
            ("create", args.latency_create),
            ("search", args.latency_search),
        )
        if delay
    }
    asyncio.run(
        serve(
            args.host,
            args.port,
            args.customers,
            args.seed,
            token_ttl=args.token_ttl,
            token_style=args.token_style,
            latency=latency,
            max_in_flight=args.max_in_flight,
            rate_limit=args.rate_limit,
            fault_rate=args.fault_rate,
            fault_seed=args.fault_seed,
            strict=not args.accept_unknown_fields,
            ready=print_connection_info,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
