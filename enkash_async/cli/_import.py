"""``customers import FILE``: the CLI face of the sync core (:func:`enkash_async.sync.sync_rows`).

This module adds only what a person at a terminal needs: the file check before any
connection, the checkpoint file, a progress bar, the rejects file and the summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any

from enkash_async.cli import _types as types
from enkash_async.cli._connect import add_connection_flags, connect, count_words
from enkash_async.cli._ui import CommandError, err, progress, table
from enkash_async.sync import (
    DeactivationRefusedError,
    KnownRefs,
    Outcome,
    SourceError,
    SqliteCheckpoint,
    SyncOutcome,
    SyncSummary,
    check_source,
    count_rows,
    deactivate_missing,
    plan_rows,
    read_file,
    sync_rows,
)

__all__ = ["import_file", "register"]


def register(actions: Any) -> None:
    """Add ``import`` to the ``customers`` subcommands."""
    sub = actions.add_parser(
        "import",
        help="make EnKash hold each customer of a CSV or JSONL file, by uniqueRefNo",
        description="Make EnKash hold each customer of FILE as the file says, identified by "
        "its uniqueRefNo: a customer EnKash lacks is created exactly once, one it holds "
        "otherwise is updated with only the fields that differ (one PATCH, and activate or "
        "deactivate for `active`), one it holds as the file says is left alone. Rerunning "
        "after a crash, or on an edited file, never creates a customer twice and sends only "
        "the edits. FILE is what `customers search --format csv|jsonl` writes.",
    )
    sub.add_argument("file", metavar="FILE", help="a .csv or .jsonl file of customers")
    sub.add_argument(
        "--concurrency",
        type=types.positive,
        default=32,
        metavar="N",
        help="creates in flight at once, 1 or more (default: %(default)s)",
    )
    sub.add_argument(
        "--rejects",
        metavar="PATH",
        help="where rows not in EnKash afterwards (rejected or failed) are "
        "listed (default: FILE.rejects.jsonl, written only when there are some)",
    )
    sub.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="SQLite file recording which uniqueRefNo are done, for safe "
        "reruns; may be shared by several files (default: FILE.checkpoint.sqlite)",
    )
    sub.add_argument(
        "--run",
        default="default",
        metavar="NAME",
        help="name of this sync inside the checkpoint; a new name starts "
        "afresh (default: %(default)s)",
    )
    sub.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: read EnKash's customers once and report what would be "
        "created, what would be updated (and which fields), what is unchanged and what is "
        "invalid",
    )
    sub.add_argument(
        "--create-only",
        action="store_true",
        help="only create customers EnKash lacks; never compare or update one it has "
        "(the import before upserts)",
    )
    sub.add_argument(
        "--deactivate-missing",
        action="store_true",
        help="after the import, deactivate the customers this checkpoint created or saw "
        "that FILE no longer lists (the dry run shows them); refused when they are more "
        "than --max-deactivate of those it knows",
    )
    sub.add_argument(
        "--max-deactivate",
        type=types.fraction,
        default=0.10,
        metavar="SHARE",
        help="the largest share (0 to 1) of the checkpoint's customers --deactivate-missing "
        "may deactivate, so a file cut short cannot deactivate them all (default: 0.1)",
    )
    sub.add_argument(
        "--no-scan",
        action="store_true",
        help="skip the one pass over EnKash's customers; rely on the checkpoint: a row "
        "as it was last written is unchanged with no request, an edited one is compared "
        "with EnKash's record, read by id (default: scan, which also catches edits made "
        "in EnKash since the last run)",
    )
    add_connection_flags(sub)
    sub.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    """Handler of ``customers import``."""
    return await import_file(
        args,
        args.file,
        concurrency=args.concurrency,
        rejects=args.rejects or f"{args.file}.rejects.jsonl",
        checkpoint=args.checkpoint or f"{args.file}.checkpoint.sqlite",
        run_name=args.run,
        dry_run=args.dry_run,
        scan=not args.no_scan,
        create_only=args.create_only,
        deactivate=args.max_deactivate if args.deactivate_missing else None,
    )


async def import_file(
    args: argparse.Namespace,
    path: str,
    *,
    concurrency: int,
    rejects: str,
    checkpoint: str,
    run_name: str = "default",
    dry_run: bool = False,
    scan: bool = True,
    create_only: bool = False,
    deactivate: float | None = None,
) -> int:
    """Sync every row of ``path``; returns 0, or 1 when a row was rejected or failed.
    ``deactivate``: the largest share of known customers to deactivate as missing (None:
    deactivate none)."""
    try:
        check_source(path)  # before credentials: a missing file is the first thing to fix
    except SourceError as exc:
        raise CommandError(str(exc)) from None
    total = count_rows(path)
    if total == 0:  # an empty file imports nothing: most likely not the file meant
        raise CommandError(
            f"{path}: no rows to import (the file is empty, or holds only a header)", exit_code=1
        )
    started = time.monotonic()
    done = SyncSummary()  # counted as outcomes arrive, for an interruption's message
    rejected = _Rejects(Path(rejects))
    async with connect(args, width=concurrency) as connection:
        client = connection.client
        summary: SyncSummary
        known: KnownRefs | None = None
        scan_took: tuple[float, int] | None = None  # seconds, customers of the pass over EnKash
        listed = KnownRefs() if deactivate is not None else None
        missing = SyncSummary()
        refusal: DeactivationRefusedError | None = None

        def deactivated(outcome: SyncOutcome) -> None:
            if outcome.outcome is Outcome.FAILED:
                rejected.write(outcome)

        async def deactivate_all(store: SqliteCheckpoint, *, plan: bool) -> None:
            nonlocal missing, refusal
            assert deactivate is not None and listed is not None
            try:
                with progress("deactivating customers the file no longer lists", None):
                    missing = await deactivate_missing(
                        client,
                        store,
                        listed,
                        max_share=deactivate,
                        dry_run=plan,
                        on_outcome=deactivated,
                    )
            except DeactivationRefusedError as exc:
                refusal = exc

        try:
            if dry_run or scan:
                known = KnownRefs()
                with progress("reading EnKash's customers", None) as scan_bar:
                    read = [0]

                    def scanned(count: int, enkash_total: int | None) -> None:
                        scan_bar.set_total(enkash_total)
                        scan_bar.advance(count)
                        read[0] += count

                    scan_started = time.monotonic()
                    await known.load(client, on_page=scanned)
                    scan_took = (time.monotonic() - scan_started, read[0])
            with progress(f"importing {path}", total) as bar:

                def record(outcome: SyncOutcome) -> None:
                    done.count(outcome)
                    if outcome.outcome in (Outcome.REJECTED, Outcome.FAILED):
                        rejected.write(outcome)
                    bar.advance()

                if dry_run:
                    summary = await plan_rows(
                        read_file(path),
                        known_refs=known,
                        on_outcome=record,
                        create_only=create_only,
                        listed=listed,
                    )
                    if deactivate is not None and not connection.fake and Path(checkpoint).exists():
                        store = SqliteCheckpoint(checkpoint, connection.target, run_name)
                        try:
                            await deactivate_all(store, plan=True)
                        finally:
                            await store.aclose()
                else:
                    # A fake EnKash dies with the command: its checkpoint must too.
                    store = SqliteCheckpoint(
                        ":memory:" if connection.fake else checkpoint,
                        connection.target,
                        run_name,
                    )
                    try:
                        summary = await _interruptible(
                            done,
                            checkpoint,
                            sync_rows(
                                # lazy: a row written before as it is now is never built
                                read_file(path, lazy=not create_only),
                                client=client,
                                checkpoint=store,
                                concurrency=concurrency,
                                on_outcome=record,
                                known_refs=known,
                                create_only=create_only,
                                listed=listed,
                            ),
                        )
                        if deactivate is not None:
                            await deactivate_all(store, plan=False)
                    finally:
                        await store.aclose()
        finally:
            rejected.close()
            if known is not None:
                known.close()
            if listed is not None:
                listed.close()
    summary.elapsed = time.monotonic() - started
    summary.deactivated, summary.would_deactivate = missing.deactivated, missing.would_deactivate
    summary.failed += missing.failed
    _report(
        summary,
        rejected,
        dry_run=dry_run,
        create_only=create_only,
        missing=deactivate is not None,
        scan_took=scan_took,
    )
    if refusal is not None:
        raise CommandError(
            f"{refusal}: rerun with --max-deactivate {refusal.share_needed:g} (nothing was "
            "deactivated)",
            exit_code=1,
        )
    return 1 if summary.rejected or summary.failed else 0


async def _interruptible(
    done: SyncSummary, checkpoint: str, work: Coroutine[Any, Any, SyncSummary]
) -> SyncSummary:
    """``await work``; Ctrl-C (a cancellation, or KeyboardInterrupt) says what was done
    and that a rerun resumes, as a ``CommandError`` with exit code 130."""
    try:
        return await work
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise CommandError(
            f"interrupted after {count_words(done.rows, 'row')}: {_counts(done)}. "
            f"Run the same command again to resume: {checkpoint} keeps what was done, "
            "and nothing is created twice",
            exit_code=130,
        ) from None


class _Rejects:
    """The rejects file: written from its first row on, and replaced, not appended, on a
    rerun (a stale one from an earlier run is removed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._stream: IO[str] | None = None
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def write(self, outcome: SyncOutcome) -> None:
        if self._stream is None:
            self._stream = self.path.open("w", encoding="utf-8")
        reasons = list(outcome.reasons) or [str(outcome.error or outcome.detail)]
        entry = {
            "line": outcome.line,
            "uniqueRefNo": outcome.ref,
            "outcome": outcome.outcome.value,
            "reasons": reasons,
        }
        self._stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._stream.flush()
        self.rows += 1

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def _counts(summary: SyncSummary, *, create_only: bool = False) -> str:
    """The summary line's counts: created, updated, unchanged (found, with create_only
    or when some were), rejected, failed."""
    parts = [f"{summary.created:,} created"]
    if not create_only:
        parts += [f"{summary.updated:,} updated", f"{summary.unchanged:,} unchanged"]
    if create_only or summary.found:
        parts.append(f"{summary.found:,} found")
    parts += [f"{summary.rejected:,} rejected", f"{summary.failed:,} failed"]
    return ", ".join(parts)


def _report(
    summary: SyncSummary,
    rejects: _Rejects,
    *,
    dry_run: bool,
    create_only: bool,
    missing: bool = False,
    scan_took: tuple[float, int] | None = None,
) -> None:
    rows: list[tuple[str, str]] = []
    if dry_run:
        rows.append(("would create", f"{summary.would_create:,}"))
        if not create_only:
            rows += [
                ("would update", f"{summary.would_update:,}"),
                ("unchanged", f"{summary.unchanged:,}"),
            ]
        if create_only or summary.found:
            rows.append(("already in EnKash", f"{summary.found:,}"))
    else:
        rows.append(("created", f"{summary.created:,}"))
        if not create_only:
            rows += [("updated", f"{summary.updated:,}"), ("unchanged", f"{summary.unchanged:,}")]
        if create_only or summary.found:
            rows.append(("found", f"{summary.found:,}"))
    verb = "would change" if dry_run else "changed"
    rows += [(f"  {verb}: {name}", f"{n:,}") for name, n in sorted(summary.changed_fields.items())]
    if missing:
        rows.append(
            ("would deactivate", f"{summary.would_deactivate:,}")
            if dry_run
            else ("deactivated (not in the file)", f"{summary.deactivated:,}")
        )
    rows += [
        ("rejected", f"{summary.rejected:,}"),
        ("failed", f"{summary.failed:,}"),
        ("read-only fields ignored", f"{summary.ignored_fields:,}"),
    ]
    rows += [
        (f"  ignored: {name}", f"{n:,}") for name, n in sorted(summary.ignored_columns.items())
    ]
    rows.append(("elapsed", f"{summary.elapsed:.1f} s"))
    if scan_took is not None:  # the pass over EnKash, apart: it grows with EnKash, not the file
        seconds, customers = scan_took
        rows.append((f"  of which reading EnKash's {customers:,} customers", f"{seconds:.1f} s"))
    rows += [
        ("rate", f"{summary.rows / summary.elapsed:,.0f} rows/s" if summary.elapsed else "-"),
    ]
    title = "dry run: nothing was sent" if dry_run else "import"
    table(title, ("outcome", "rows"), rows, sys.stderr)
    if dry_run:
        parts = [f"{summary.would_create:,} would be created"]
        if not create_only:
            parts += [
                f"{summary.would_update:,} would be updated",
                f"{summary.unchanged:,} unchanged",
            ]
        if create_only or summary.found:
            parts.append(f"{summary.found:,} already in EnKash")
        parts.append(f"{summary.rejected:,} rejected")
        if missing:
            parts.append(f"{summary.would_deactivate:,} would be deactivated")
        line = ", ".join(parts)
    else:
        line = _counts(summary, create_only=create_only)
        if missing:
            line += f", {summary.deactivated:,} deactivated"
    if summary.ignored_columns:
        shown = ", ".join(
            f"{name} ({n:,})" for name, n in sorted(summary.ignored_columns.items())[:8]
        )
        more = len(summary.ignored_columns) - 8
        err_line = f"ignored columns EnKash assigns: {shown}" + (
            f" and {more} more" if more > 0 else ""
        )
    else:
        err_line = ""
    if rejects.rows:
        line += f"; {count_words(rejects.rows, 'row')} listed in {rejects.path}"
    if err_line:
        err(err_line)
    err(line)
