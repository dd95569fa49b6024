"""``enkash-async``: the command line (``demo``, ``customers create|search|import``, ``serve``).

Configuration comes from flags and the ``ENKASH_*`` variables; ``--fake`` runs any
command against an embedded fake EnKash. Secrets are read from the environment only and
never echoed. Exit codes: 0 success, 1 a failure the output explains, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence

from enkash_async import (
    CustomerSearch,
    CustomerStatus,
    EnkashClient,
    EnkashError,
    ValidationError,
    __version__,
)
from enkash_async.cli import _commands
from enkash_async.cli._files import InputError
from enkash_async.cli._ui import err

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enkash-async",
        description="EnKash Customer API from the command line. Credentials come from "
        "ENKASH_BASE_URL and ENKASH_TOKEN, or ENKASH_CLIENT_ID, ENKASH_CLIENT_SECRET, "
        "ENKASH_USERNAME and ENKASH_PASSWORD.",
    )
    parser.add_argument("--version", action="version", version=f"enkash-async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="create customers on an embedded fake EnKash and read them back"
    )
    demo.add_argument("--customers", type=_positive, default=10_000)
    demo.add_argument("--concurrency", type=_positive, default=64)
    demo.add_argument("--page-size", type=_page_size, default=5000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--fault-rate", type=_fraction, default=0.0,
        help="share of requests the fake server fails (0 to 1), to watch retries work",
    )

    serve = commands.add_parser("serve", help="run the fake EnKash server until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    serve.add_argument("--customers", type=_count, default=1000)
    serve.add_argument("--seed", type=int, default=0)

    customers = commands.add_parser("customers", help="create, search and import customers")
    actions = customers.add_subparsers(dest="action", required=True)
    for action in ("create", "search", "import"):
        sub = actions.add_parser(action)
        sub.add_argument("--base-url", help="overrides ENKASH_BASE_URL")
        sub.add_argument(
            "--fake", action="store_true", help="run against an embedded fake EnKash server"
        )
        sub.add_argument("--fake-customers", type=_count, default=1000,
                         help="customers the embedded fake server starts with")
        if action == "create":
            sub.add_argument("--json", required=True, metavar="FILE",
                             help="a JSON object in EnKash's wire format, or - for stdin")
        elif action == "search":
            _search_flags(sub)
        else:
            sub.add_argument("file", help="a .csv or .jsonl file of customers")
            sub.add_argument("--concurrency", type=_positive, default=32)
            sub.add_argument(
                "--rejects", help="where rejected rows go (default FILE.rejects.jsonl)"
            )
            sub.add_argument(
                "--checkpoint", help="progress file for safe reruns (default FILE.checkpoint.jsonl)"
            )
    return parser


def _search_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--legal-name", help="case-insensitive part of the legal name")
    sub.add_argument("--unique-ref-no")
    sub.add_argument("--pan-or-gstin")
    sub.add_argument("--company-id")
    sub.add_argument("--parent-company-id")
    sub.add_argument("--ifsc")
    sub.add_argument("--account-number")
    sub.add_argument("--contact-number")
    sub.add_argument("--customer-id", action="append", dest="customer_ids")
    sub.add_argument("--status", choices=[s.value for s in CustomerStatus])
    sub.add_argument("--order-by")
    sub.add_argument("--direction", choices=["ASC", "DESC"])
    sub.add_argument("--page-size", type=_page_size, default=5000)
    sub.add_argument("--max-items", type=int)
    sub.add_argument("--format", choices=["jsonl", "csv", "table"], default="jsonl")
    sub.add_argument("--output", default="-", help="a file, or - for stdout")


def _integer(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"from {low} to {high}"
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
    return value


def _positive(text: str) -> int:
    return _integer(text, 1)


def _count(text: str) -> int:
    return _integer(text, 0)


def _page_size(text: str) -> int:
    return _integer(text, 1, 5000)


def _port(text: str) -> int:
    return _integer(text, 0, 65535)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


def _filter(args: argparse.Namespace) -> CustomerSearch:
    return CustomerSearch(
        legal_name=args.legal_name, unique_ref_no=args.unique_ref_no,
        pan_or_gstin=args.pan_or_gstin, company_id=args.company_id,
        parent_company_id=args.parent_company_id, ifsc=args.ifsc,
        account_number=args.account_number, contact_number=args.contact_number,
        customer_ids=args.customer_ids, customer_status=args.status,
    )


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[EnkashClient]:
    # The client's own limits (100 by default) must not cap a larger --concurrency.
    width: int = max(100, getattr(args, "concurrency", 0))
    if args.fake:
        from enkash_async.testing import FakeEnkash

        async with (
            FakeEnkash(customers=args.fake_customers) as server,
            EnkashClient(
                server.url, credentials=server.credentials,
                max_concurrency=width, max_connections=width,
            ) as client,
        ):
            yield client
        return
    environ = dict(os.environ)
    if args.base_url:
        environ["ENKASH_BASE_URL"] = args.base_url
    async with EnkashClient.from_env(
        environ, max_concurrency=width, max_connections=width
    ) as client:
        yield client


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return await _commands.demo(
            customers=args.customers, concurrency=args.concurrency, page_size=args.page_size,
            seed=args.seed, fault_rate=args.fault_rate,
        )
    if args.command == "serve":
        return await _commands.serve(args.host, args.port, args.customers, args.seed)
    if args.action == "search":
        search_filter = _filter(args)  # bad flags fail before any connection is made
    async with _client(args) as client:
        if args.action == "create":
            return await _commands.create(client, args.json)
        if args.action == "search":
            return await _commands.search(
                client, search_filter, order_by=args.order_by, direction=args.direction,
                page_size=args.page_size, max_items=args.max_items, fmt=args.format,
                output=args.output,
            )
        return await _commands.import_file(
            client, args.file, concurrency=args.concurrency,
            rejects=args.rejects or f"{args.file}.rejects.jsonl",
            checkpoint=args.checkpoint or f"{args.file}.checkpoint.jsonl",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except ValidationError as exc:
        err(f"error: {exc}")
        return 2
    except InputError as exc:
        err(f"error: {exc}")
        return 2
    except EnkashError as exc:
        err(f"error: {exc}")
        return 1
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, and keep the interpreter's
        # final flush of stdout from failing again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it
    except UnicodeDecodeError as exc:
        err(f"error: the input is not UTF-8 text ({exc.reason} at byte {exc.start})")
        return 2
    except (OSError, json.JSONDecodeError) as exc:
        err(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        err("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
