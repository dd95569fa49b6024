"""``enkash-async sync``: a customer sync run by many workers sharing Redis.

    enkash-async sync submit FILE      store FILE as a run; prints the run id last
    enkash-async sync worker           run chunks until SIGINT/SIGTERM (one per process/host)
    enkash-async sync status RUN       outcome counts; a live bar on a terminal
    enkash-async sync report RUN       rejected, failed and updated rows as JSONL
    enkash-async sync run FILE --workers 4 --fake   (or just: sync FILE ...)
                                       everything on this machine: a Redis server, the
                                       fake EnKash, 4 worker processes; prints the summary
                                       and lists rejected or failed rows in FILE.rejects.jsonl

A run whose state Redis lost (flushed, restarted without persistence, evicted) is an
error, never "complete": resubmit with --lost-state, and every row not known done is
looked up in EnKash before it is created. Exit codes of `sync FILE`: 0 every row is in
EnKash, 1 some row was rejected or failed, the --deactivate-missing step was refused or a
deactivation failed (or the run failed), 2 bad usage. `sync status` exits 1 for a failed
run and for a refused or failed deactivate-missing step, 0 otherwise (it reports rejected
and failed rows in its counts).

Each takes ``--redis URL`` (default ``REDIS_URL``); EnKash is configured as for every
other command (``ENKASH_*``). Also runnable as ``python -m enkash_async sync``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import IO, Any, Final

from enkash_async import (
    EnkashClient,
    EnkashError,
    FieldError,
    PasswordCredentials,
    RequestLimiter,
    ValidationError,
)
from enkash_async.cli import _types as types
from enkash_async.cli._ui import CommandError, err, progress, table
from enkash_async.sync._checkpoint import SyncTarget

__all__ = ["register", "run"]

_POLL: Final = 0.25
# How long `sync status --wait` rides out a Redis that does not answer (seconds).
_OUTAGE_LIMIT: Final = 300.0


class _Forms(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The ``sync`` subcommands, where a first word that is none of them is the FILE of
    ``sync run FILE`` (so ``sync FILE --fake`` still works)."""

    class _AnyWord(dict):  # type: ignore[type-arg]
        """The choices argparse checks the first word against: any word passes."""

        def __contains__(self, name: object) -> bool:
            return True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = self._AnyWord()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values[0] not in self._name_parser_map:
            values = ["run", *values]
        super().__call__(parser, namespace, values, option_string)


def register(commands: Any) -> None:
    """Add the ``sync`` command and its subcommands to the CLI's top-level subparsers."""
    parser = commands.add_parser(
        "sync",
        help="distributed customer sync on Redis: submit, worker, status, report, FILE --fake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    forms = parser.add_subparsers(
        dest="form",
        required=True,
        metavar="{submit,worker,status,report,run} | FILE",
        action=_Forms,
    )
    helps = {
        "submit": "store FILE as a run in Redis and enqueue its chunks; prints the run id last",
        "worker": "run chunks of every run for this EnKash until SIGINT/SIGTERM",
        "status": "a run's outcome counts (--wait: until it completes)",
        "report": "a run's rejected, failed and updated rows (with the fields changed) as JSONL",
        "run": "sync FILE on this machine: a Redis, N worker processes (and --fake EnKash); "
        "`sync FILE` is short for it",
    }
    for form, text in helps.items():
        sub = forms.add_parser(form, help=text, description=text)
        _add_options(form, sub)
        sub.set_defaults(handler=run)


def _require_extra() -> None:
    """Say which extra to install when the distributed sync's libraries are missing."""
    try:
        import redis  # noqa: F401
        import saq  # noqa: F401
    except ImportError as exc:
        raise CommandError(
            f"`enkash-async sync` needs the sync extra ({exc.name or 'saq'} is not installed): "
            "pip install 'enkash-async[sync]'",
            exit_code=1,
        ) from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", help="Redis URL (default: REDIS_URL)")


def _budget_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=types.positive,
        default=16,
        help="requests in flight per worker (default 16)",
    )
    parser.add_argument(
        "--jobs", type=types.positive, default=1, help="chunks a worker runs at once (default 1)"
    )
    parser.add_argument(
        "--max-concurrency",
        type=types.positive,
        default=64,
        help="requests in flight across all workers (default 64)",
    )
    parser.add_argument(
        "--rate-limit",
        type=types.rate,
        default=None,
        metavar="RPS",
        help="requests per second across all workers (default: none)",
    )
    parser.add_argument(
        "--sweep",
        type=types.positive,
        default=5,
        help="seconds between checks for chunks of dead workers (default %(default)s)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=types.rate,
        default=90.0,
        help="seconds before a dead worker's request slots come back (default %(default)s)",
    )


def _deactivate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deactivate-missing",
        action="store_true",
        help="once every chunk is done, deactivate the customers this checkpoint created or "
        "saw that FILE no longer lists; refused when they are more than --max-deactivate "
        "of those it knows",
    )
    parser.add_argument(
        "--max-deactivate",
        type=types.fraction,
        default=0.10,
        metavar="SHARE",
        help="the largest share (0 to 1) of the checkpoint's customers --deactivate-missing "
        "may deactivate, so a file cut short cannot deactivate them all (default: 0.1)",
    )


def _create_only_flag(parser: argparse.ArgumentParser) -> None:
    # As `customers import --create-only`, also allowed with --deactivate-missing.
    parser.add_argument(
        "--create-only",
        action="store_true",
        help="only create customers EnKash lacks; never compare or update one it has "
        "(the import before upserts)",
    )


def _heartbeat_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--heartbeat",
        type=types.positive,
        default=10,
        help="seconds a chunk may go without its worker's heartbeat before it is redone "
        "(default %(default)s)",
    )


def _add_options(form: str, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _common(parser)
    if form == "submit":
        parser.add_argument("file", help="a .csv or .jsonl file of customers")
        parser.add_argument("--run", help="the run id (default: a new one); resubmit to resume")
        parser.add_argument(
            "--chunk-rows",
            type=types.positive,
            default=500,
            help="rows per chunk (one job each), on average (default %(default)s)",
        )
        parser.add_argument(
            "--checkpoint",
            default="default",
            help="checkpoint shared with earlier runs (default 'default')",
        )
        parser.add_argument("--base-url", help="EnKash's base URL (default: ENKASH_BASE_URL)")
        parser.add_argument(
            "--lost-state",
            action="store_true",
            help="Redis lost the checkpoint: look every row up before creating it",
        )
        _create_only_flag(parser)
        _deactivate_flags(parser)
        _heartbeat_flag(parser)
    elif form == "worker":
        _budget_flags(parser)
        parser.add_argument("--base-url", help="EnKash's base URL (default: ENKASH_BASE_URL)")
        parser.add_argument(
            "--budget",
            choices=["shared", "local"],
            default="shared",
            help="shared (default): one budget in Redis for all workers; local: each worker "
            "applies --max-concurrency and --rate-limit alone (for comparison only)",
        )
        parser.add_argument(
            "--log-level",
            default="INFO",
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="what the worker logs to stderr (default INFO: each chunk started, finished, "
            "redone)",
        )
        parser.add_argument(
            "--metrics-port",
            type=types.port,
            help="serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port, "
            "logged; default: no metrics)",
        )
        parser.add_argument(
            "--metrics-host",
            type=types.host,
            default="127.0.0.1",
            help="the address the metrics server listens on (default %(default)s)",
        )
    elif form == "status":
        parser.add_argument("run", help="the run id `sync submit` printed")
        parser.add_argument("--wait", action="store_true", help="wait until the run completes")
    elif form == "report":
        parser.add_argument("run", help="the run id `sync submit` printed")
        parser.add_argument("--output", default="-", help="a file, or - for stdout (default -)")
    else:
        parser.add_argument("file", help="a .csv or .jsonl file of customers")
        parser.add_argument(
            "--workers",
            type=types.positive,
            default=4,
            help="worker processes to start on this machine (default 4)",
        )
        parser.add_argument(
            "--fake", action="store_true", help="run against a fake EnKash on this machine"
        )
        parser.add_argument(
            "--fault-rate",
            type=types.fraction,
            default=0.0,
            help="with --fake: share of requests the fake fails, 0-1 (default %(default)s)",
        )
        parser.add_argument(
            "--rejects",
            metavar="PATH",
            help="where rows not in EnKash afterwards (rejected or failed) are listed "
            "(default: FILE.rejects.jsonl, written only when there are some)",
        )
        parser.add_argument(
            "--lost-state",
            action="store_true",
            help="Redis lost the checkpoint: look every row up before creating it",
        )
        parser.add_argument(
            "--chunk-rows",
            type=types.positive,
            default=500,
            help="rows per chunk (one job each), on average (default %(default)s)",
        )
        parser.add_argument("--base-url", help="EnKash's base URL (default: ENKASH_BASE_URL)")
        _create_only_flag(parser)
        _deactivate_flags(parser)
        _budget_flags(parser)
        _heartbeat_flag(parser)
    return parser


def _config_error(name: str, message: str) -> ValidationError:
    return ValidationError([FieldError(name, message)], model="sync configuration")


def _redis_url(args: argparse.Namespace) -> str | None:
    return args.redis or os.environ.get("REDIS_URL") or None


def _require_redis(args: argparse.Namespace) -> str:
    url = _redis_url(args)
    if url is None:
        raise _config_error("redis", "give --redis URL or set REDIS_URL")
    return url


def _environ(args: argparse.Namespace) -> dict[str, str]:
    environ = dict(os.environ)
    if getattr(args, "base_url", None):
        environ["ENKASH_BASE_URL"] = args.base_url
    return environ


def _credentials(environ: dict[str, str]) -> PasswordCredentials | None:
    """The password login the ``ENKASH_*`` variables give (None for a token)."""
    if environ.get("ENKASH_TOKEN"):
        return None
    names = ("ENKASH_CLIENT_ID", "ENKASH_CLIENT_SECRET", "ENKASH_USERNAME", "ENKASH_PASSWORD")
    if not all(environ.get(name) for name in names):
        return None
    return PasswordCredentials(*(environ[name] for name in names))


def target_from_env(environ: dict[str, str]) -> SyncTarget:
    """The EnKash target the ``ENKASH_*`` variables name (no secret in it)."""
    base_url = environ.get("ENKASH_BASE_URL")
    if not base_url:
        raise _config_error("ENKASH_BASE_URL", "is not set")
    token = environ.get("ENKASH_TOKEN")
    if token:
        return SyncTarget.for_token(base_url, token)
    username = environ.get("ENKASH_USERNAME")
    if not username:
        raise _config_error("ENKASH_USERNAME", "is not set (nor is ENKASH_TOKEN)")
    return SyncTarget.for_user(base_url, username)


async def run(args: argparse.Namespace) -> int:
    """The ``sync`` command's handler: run its subcommand."""
    _require_extra()
    form, sub = args.form, args
    if form == "submit":
        return await _submit(sub)
    if form == "worker":
        return await _worker(sub)
    if form == "status":
        return await _status(sub)
    if form == "report":
        return await _report(sub)
    return await _run_here(sub)


async def _submit(args: argparse.Namespace) -> int:
    from enkash_async.sync.redis import _saq
    from enkash_async.sync.redis._saq import WorkerSettings

    result = await _saq.submit(
        _require_redis(args),
        args.file,
        target=target_from_env(_environ(args)),
        run=args.run,
        chunk_rows=args.chunk_rows,
        checkpoint=args.checkpoint,
        settings=WorkerSettings(heartbeat=args.heartbeat),
        lost_state=args.lost_state,
        deactivate_missing=args.max_deactivate if args.deactivate_missing else None,
        create_only=args.create_only,
    )
    err(
        f"{result.rows} rows in {result.chunks} chunks; {result.enqueued} chunks enqueued now, "
        f"{result.rejected} rows rejected unsent"
    )
    print(result.run, flush=True)
    return 0


def _settings(args: argparse.Namespace) -> Any:
    from enkash_async.sync.redis._saq import WorkerSettings

    return WorkerSettings(
        concurrency=args.concurrency,
        jobs=args.jobs,
        max_concurrency=args.max_concurrency,
        rate_limit=args.rate_limit,
        heartbeat=getattr(args, "heartbeat", 10),
        sweep=args.sweep,
        lease_ttl=args.lease_ttl,
    )


async def _worker(args: argparse.Namespace) -> int:
    from enkash_async.sync.redis import _saq

    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s worker %(process)d %(name)s %(levelname)s %(message)s",
    )
    if args.log_level != "DEBUG":  # each retry of each request is too much for a worker log
        logging.getLogger("enkash_async").setLevel(logging.WARNING)
        logging.getLogger("enkash_async.sync").setLevel(args.log_level)
    url = _require_redis(args)
    environ = _environ(args)
    target = target_from_env(environ)
    settings = _settings(args)
    width = max(100, settings.concurrency * settings.jobs)
    async with contextlib.AsyncExitStack() as stack:
        hooks = None
        if args.budget == "local":
            # Each worker on its own limits: only to compare against the shared budget.
            limiter: Any = RequestLimiter(settings.max_concurrency, rate_limit=settings.rate_limit)
        else:
            limiter = _saq.shared_limiter(url, target, settings)
            stack.push_async_callback(limiter.aclose)
        if args.metrics_port is not None:
            hooks = await _serve_metrics(stack, args, limiter)
        client = await stack.enter_async_context(
            EnkashClient.from_env(environ, limiter=limiter, max_connections=width, hooks=hooks)
        )
        if args.budget == "local":
            await _saq.run_worker(url, client, target, settings)
            return 0
        err(f"worker {os.getpid()}: chunks for {target.base_url} from Redis")
        await _saq.run_worker(url, client, target, settings, credentials=_credentials(environ))
    return 0


async def _serve_metrics(
    stack: contextlib.AsyncExitStack, args: argparse.Namespace, limiter: Any
) -> Any:
    """The worker's Prometheus hooks, served on ``--metrics-port`` until ``stack`` closes."""
    from enkash_async.sync.redis._metrics import MetricsServerError, PrometheusHooks, serve_metrics

    hooks = PrometheusHooks()
    budget = limiter if hasattr(limiter, "state") else None
    try:
        await stack.enter_async_context(
            serve_metrics(hooks, args.metrics_port, args.metrics_host, budget=budget)
        )
    except MetricsServerError as exc:
        raise CommandError(str(exc)) from None
    return hooks


def _dump_tasks() -> None:
    """SIGUSR1: print where each of the worker's tasks is waiting (for a stuck worker)."""
    for task in asyncio.all_tasks():
        task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


def _kinds(status: Any) -> tuple[str, ...]:
    """The outcomes a summary names, as ``customers import`` does: created, updated,
    unchanged, rejected, failed (and found, when some were); for a create-only run
    created, found, rejected, failed."""
    if status.create_only:
        return ("created", "found", "rejected", "failed")
    found = ("found",) if status.counts.get("found") else ()
    return ("created", "updated", "unchanged", *found, "rejected", "failed")


def _counts_line(status: Any) -> str:
    counts = status.counts
    line = ", ".join(f"{counts.get(kind, 0):,} {kind}" for kind in _kinds(status))
    if status.deactivation == "done":
        line += f", {int(status.meta.get('deactivated', 0)):,} deactivated"
    elif status.deactivation == "refused":
        line += ", deactivation refused (nothing was deactivated)"
    return line


def _refused(status: Any) -> bool:
    """The run's deactivate-missing step was refused, or some deactivation failed."""
    return status.deactivation == "refused" or bool(int(status.meta.get("deactivate_failed", 0)))


async def _still_known(url: str, run_id: str, before: Any) -> Any:
    """The run's status now; raises ``StateLostError`` when Redis lost the run since."""
    from enkash_async.sync.redis._connection import StateLostError, redacted
    from enkash_async.sync.redis._saq import run_status

    status = await run_status(url, run_id)
    if not status.known:
        raise StateLostError(
            f"the state of run {run_id} vanished from Redis at {redacted(url)} after "
            f"{before.settled} of {before.rows} rows had an outcome (flushed, restarted "
            "without persistence, or evicted): the run is NOT complete, and the rows Redis "
            "forgot may or may not be in EnKash. Resubmit the file with --lost-state "
            f"(sync submit FILE --run {run_id} --lost-state, or sync FILE --lost-state): "
            "every row not known done is then looked up in EnKash before it is created",
            url=redacted(url),
            operation=f"watching run {run_id}",
        )
    return status


class _Watching:
    """Successive statuses of a run being watched: a run Redis lost raises
    ``StateLostError``; a Redis restarting or briefly unreachable is waited for (said once),
    up to ``_OUTAGE_LIMIT`` seconds."""

    def __init__(self, url: str, run_id: str) -> None:
        self.url, self.run_id = url, run_id
        self.outage: float | None = None

    async def first(self) -> Any:
        """The run's status, once Redis answers."""
        from enkash_async.sync.redis._saq import run_status

        while True:
            with self._riding_out():
                return await run_status(self.url, self.run_id)
            await asyncio.sleep(_POLL)

    async def next(self, before: Any) -> Any:
        """The run's status now, or ``before`` while Redis does not answer."""
        with self._riding_out():
            return await _still_known(self.url, self.run_id, before)
        return before

    @contextlib.contextmanager
    def _riding_out(self) -> Iterator[None]:
        """Swallow an unreachable Redis (raising once it has been down too long)."""
        from enkash_async.sync.redis._connection import StateLostError, SyncStoreError

        try:
            yield
        except StateLostError:
            raise
        except SyncStoreError as exc:
            now = time.monotonic()
            if self.outage is None:
                self.outage = now
                err(f"waiting for Redis to answer again ({exc.__cause__ or exc})")
            elif now - self.outage > _OUTAGE_LIMIT:
                raise
            return
        if self.outage is not None:
            self.outage = None
            err("Redis answers again")


async def _watch(url: str, run_id: str, *, live: bool, wait: bool) -> Any:
    """Poll the run's status (with a live bar when ``live``) until complete or not ``wait``."""
    from enkash_async.sync.redis._saq import run_status

    watching = _Watching(url, run_id)
    status = await (watching.first() if wait else run_status(url, run_id))
    if not status.known:
        raise EnkashError(
            f"Redis has no run {run_id!r}: it was never submitted to this Redis, or Redis "
            "lost its state (flushed, restarted without persistence, evicted). If it was "
            f"submitted, resubmit the file: sync submit FILE --run {run_id} --lost-state"
        )
    if not (live or wait):
        return status
    with progress(f"run {run_id}", status.rows if live else None) as bar:
        shown = 0
        while True:
            bar.advance(status.settled - shown)
            shown = status.settled
            if status.complete:
                return status
            await asyncio.sleep(_POLL)
            status = await watching.next(status)


def _request_rows(status: Any) -> list[list[Any]]:
    """What the run's workers sent, and the target's shared budget now."""
    figures, budget = status.figures, status.budget
    rows: list[list[Any]] = [
        ["requests sent", f"{figures.get('requests', 0):,}"],
        ["429 replies", f"{figures.get('rate_limited', 0):,}"],
        ["retries", f"{figures.get('retries', 0):,}"],
    ]
    if figures.get("no_reply"):
        rows.append(["requests with no reply", f"{figures['no_reply']:,}"])
    if budget:
        window = budget.get("window")
        rate = budget.get("rate")
        rows.append(["budget window", "-" if window is None else f"{window:.1f} in flight"])
        rows.append(["budget rate", "none" if not rate else f"{rate:.1f} requests/s"])
        rows.append(["leases in flight", f"{budget.get('in_flight', 0):.0f}"])
    return rows


def _print_status(status: Any, elapsed: float | None = None, *, again: str = "") -> None:
    """The run's table and summary line; a refused deactivate-missing step is explained
    on stderr, ``again`` naming how to run it anew."""
    rows = [[kind, f"{status.counts.get(kind, 0):,}"] for kind in _kinds(status)]
    if status.deactivating:
        deactivated = status.meta.get("deactivated", "-" if status.deactivation != "refused" else 0)
        rows.append(["deactivated (not in the file)", deactivated])
        if status.meta.get("deactivate_failed", "0") != "0":
            rows.append(["deactivations failed", status.meta["deactivate_failed"]])
    rows.append(["rows", status.rows])
    rows.append(["chunks done", f"{status.chunks_done} of {status.chunks}"])
    rows += _request_rows(status)
    if elapsed is not None:
        rows.append(["elapsed", f"{elapsed:.1f}s"])
        rows.append(["rate", f"{status.settled / elapsed:.0f} rows/s" if elapsed else "-"])
    table(f"sync run {status.run}", ["", "rows"], rows)
    if status.complete:
        print(f"run {status.run} is complete: {_counts_line(status)}", flush=True)
        if status.deactivation == "refused":
            share = status.meta.get("deactivation_share_needed")
            flag = f"--max-deactivate {share}" if share else "a larger --max-deactivate"
            err(
                f"{status.meta.get('deactivation_error', 'deactivation refused')}: "
                f"{again or 'submit the file again (a new run)'} with --deactivate-missing "
                f"{flag} (nothing was deactivated)"
            )
    else:
        print(
            f"run {status.run} is in progress: {status.settled} of {status.rows} rows "
            f"settled, {status.chunks_done} of {status.chunks} chunks done",
            flush=True,
        )


async def _status(args: argparse.Namespace) -> int:
    url = _require_redis(args)
    live = sys.stderr.isatty() and sys.stdout.isatty()
    try:
        status = await _watch(url, args.run, live=live, wait=args.wait)
    except KeyboardInterrupt:  # pragma: no cover - a person stopped watching
        from enkash_async.sync.redis._saq import run_status

        status = await run_status(url, args.run)
    _print_status(status)
    # As `customers import`: a refused (or failed) deactivate-missing step is not a success.
    return 1 if status.complete and _refused(status) else 0


async def _report(args: argparse.Namespace) -> int:
    from enkash_async.sync.redis._connection import connect
    from enkash_async.sync.redis._runs import RunStore

    url = _require_redis(args)
    redis = connect(url)
    written = 0
    try:
        store = RunStore(redis, url, args.run)
        if not (await store.meta()):
            raise EnkashError(f"Redis has no run {args.run!r}")
        with contextlib.ExitStack() as stack:
            out = (
                sys.stdout
                if args.output == "-"
                else stack.enter_context(open(args.output, "w", encoding="utf-8"))
            )
            async for record in _problem_rows(store, updated=True):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
            out.flush()
    finally:
        await redis.aclose()
    err(f"{written} rejected, failed or updated rows")
    return 0


# ---- everything on this machine -------------------------------------------------


@contextlib.asynccontextmanager
async def _local_redis(url: str | None) -> AsyncIterator[str]:
    if url is not None:
        yield url
        return
    from enkash_async.sync.redis._server import RedisServer

    server = RedisServer()
    await asyncio.to_thread(server.start)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.close)


@contextlib.asynccontextmanager
async def _enkash_env(args: argparse.Namespace) -> AsyncIterator[dict[str, str]]:
    """The worker environment: the real EnKash's, or an embedded fake's."""
    if not args.fake:
        yield _environ(args)
        return
    from enkash_async.testing import FakeEnkash, inject_fault_mix

    async with FakeEnkash() as server:
        if args.fault_rate:
            inject_fault_mix(server, args.fault_rate)
        credentials = server.credentials
        environ = {key: value for key, value in os.environ.items() if not key.startswith("ENKASH_")}
        environ.update(
            ENKASH_BASE_URL=server.url,
            ENKASH_CLIENT_ID=credentials.client_id,
            ENKASH_CLIENT_SECRET=credentials.client_secret,
            ENKASH_USERNAME=credentials.username,
            ENKASH_PASSWORD=credentials.password,
        )
        yield environ


def worker_command(args: argparse.Namespace) -> list[str]:
    """The command line of one worker process for ``sync FILE`` (Redis comes from
    ``REDIS_URL`` in its environment)."""
    command = [
        sys.executable,
        "-m",
        "enkash_async",
        "sync",
        "worker",
        "--concurrency",
        str(args.concurrency),
        "--jobs",
        str(args.jobs),
        "--max-concurrency",
        str(args.max_concurrency),
        "--sweep",
        str(args.sweep),
        "--lease-ttl",
        str(args.lease_ttl),
        # The summary is what a local run shows; chunk-by-chunk logs would bury it.
        "--log-level",
        "WARNING",
    ]
    if args.rate_limit:
        command += ["--rate-limit", str(args.rate_limit)]
    return command


async def _stop(processes: Sequence[asyncio.subprocess.Process]) -> None:
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 10)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


async def _run_here(args: argparse.Namespace) -> int:
    from enkash_async.sync.redis import _saq

    started = time.monotonic()
    async with _local_redis(_redis_url(args)) as url, _enkash_env(args) as environ:
        target = target_from_env(environ)
        result = await _saq.submit(
            url,
            args.file,
            target=target,
            chunk_rows=args.chunk_rows,
            settings=_settings(args),
            lost_state=args.lost_state,
            deactivate_missing=args.max_deactivate if args.deactivate_missing else None,
            create_only=args.create_only,
        )
        err(
            f"run {result.run}: {result.rows} rows in {result.chunks} chunks, "
            f"{args.workers} workers"
        )
        # The Redis URL (and any password in it) goes by the environment, never the
        # command line, which every local user can read in /proc/PID/cmdline.
        worker_env = {**environ, "REDIS_URL": url}
        processes = [
            await asyncio.create_subprocess_exec(
                *worker_command(args), env=worker_env, stdin=asyncio.subprocess.DEVNULL
            )
            for _ in range(args.workers)
        ]
        try:
            status = await _until_complete(url, result.run, processes)
        finally:
            await _stop(processes)
        listed = await _write_rejects(url, result.run, args.rejects or f"{args.file}.rejects.jsonl")
    _print_status(status, time.monotonic() - started, again="run `sync FILE` again")
    if listed:
        err(f"{listed} rejected or failed rows listed in {listed.path}")
    problems = status.counts.get("failed") or status.counts.get("rejected") or _refused(status)
    return 1 if problems else 0


class _Listed(int):
    """A count of rows written, and the file they went to."""

    path: str


async def _write_rejects(url: str, run_id: str, path: str) -> _Listed:
    """Write the run's rejected and failed rows to ``path`` as import does (replacing an
    earlier file; none when there are none); how many."""
    from enkash_async.sync.redis._connection import connect
    from enkash_async.sync.redis._runs import RunStore

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    redis = connect(url)
    written = 0
    try:
        with contextlib.ExitStack() as stack:
            out: IO[str] | None = None
            async for record in _problem_rows(RunStore(redis, url, run_id)):
                if out is None:
                    out = stack.enter_context(open(path, "w", encoding="utf-8"))
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
    finally:
        await redis.aclose()
    listed = _Listed(written)
    listed.path = path
    return listed


async def _problem_rows(store: Any, *, updated: bool = False) -> AsyncIterator[dict[str, Any]]:
    """The run's rejected and failed rows, each as import's rejects file writes one; with
    ``updated``, the updated rows too, each with the fields it ``changed``."""
    async for item in store.outcomes():
        if updated and item.outcome == "updated":
            yield {
                "line": item.line,
                "uniqueRefNo": item.details.get("uniqueRefNo"),
                "outcome": "updated",
                "changed": list(item.details.get("changed") or []),
            }
        elif item.outcome in ("rejected", "failed"):
            details = dict(item.details)
            ref = details.pop("uniqueRefNo", details.pop("ref", None))
            reasons = list(details.get("reasons") or []) or [str(details.get("error", ""))]
            yield {
                "line": item.line,
                "uniqueRefNo": ref,
                "outcome": item.outcome,
                "reasons": reasons,
            }


async def _until_complete(
    url: str, run_id: str, processes: Sequence[asyncio.subprocess.Process]
) -> Any:
    from enkash_async.sync.redis._saq import run_status

    live = sys.stderr.isatty()
    status = await run_status(url, run_id)
    watching = _Watching(url, run_id)
    with progress(f"run {run_id}", status.rows if live else None) as bar:
        shown = 0
        while not status.complete:
            if all(process.returncode is not None for process in processes):
                raise EnkashError(
                    "every worker process exited before the run completed (each said why "
                    "above); the run is not complete"
                )
            await asyncio.sleep(_POLL)
            status = await watching.next(status)
            bar.advance(status.settled - shown)
            shown = status.settled
    return status
