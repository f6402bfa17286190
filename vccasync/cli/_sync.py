"""``vccasync sync``: keep an SQLite or PostgreSQL store complete and current, pass after pass."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from vccasync._counts import count
from vccasync._errors import InvalidRequestError
from vccasync._instants import format_instant
from vccasync.content._bulk import format_size
from vccasync.content._feed import ContentFeed, Settled
from vccasync.stores._contract import ALL_TYPES, StoreOptions, SyncStore
from vccasync.stores._registry import open_store, store_exists
from vccasync.sync import DEFAULT_EVERY, DEFAULT_LOOKBACK, SyncEngine, parse_duration

from . import _demo as demo
from ._common import (
    add_account_option,
    add_client_options,
    add_filter_options,
    add_type_option,
    check_types,
    connect,
    filters_from_args,
    instant,
    open_client,
    say,
)
from ._content import DEFAULT_WORKERS, check_dest
from ._progress import display_for
from ._sync_progress import FeedCounts, Observers, SyncTally

__all__ = ["add_parser", "run"]


def wall_clock() -> datetime:
    """The clock of the content queue's next tries (tests replace it)."""
    return datetime.now(UTC)


def _hours(duration: timedelta) -> str:
    """``24h``, ``5m``, ``1h30m``: a default as the options take it."""
    minutes = int(duration.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or not hours else "")


DESCRIPTION = f"""\
Keep a store complete and current. Each pass scans from where the last complete pass ended
minus --lookback (default {_hours(DEFAULT_LOOKBACK)}: content keeps
arriving after an interaction ends) up to now: new interactions are inserted, changed ones
updated (updated_at), and those of the scanned span the API no longer returns get removed_at
(the row stays). The first pass starts at --since (required then, except with --demo); an
earlier --since later extends the history backwards. --follow runs a pass every --every until
stopped (SIGTERM ends at a page boundary, exit 0: no new download starts, those in flight
are cut at --stop-timeout, the store's content queue keeps the rest). Rerunning after any
interruption resumes the pass under way. One sync writes an account's rows in a store at a
time (a second is refused, exit 2); a run whose writer lease is lost stops, exit 1.
--status prints the store's coverage and content queue, sending no request. Progress goes to
stderr (a live display on a terminal, else a line every few seconds while a pass runs) and
each pass ends with one line; --quiet prints only errors and failures.
"""
DEFAULT_STOP_TIMEOUT: Final = timedelta(seconds=30)


def _duration(name: str) -> Any:
    def convert(text: str) -> timedelta:
        try:
            return parse_duration(text, name=name)
        except InvalidRequestError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {text!r}")
    return int(text)


def add_parser(subparsers: Any) -> None:
    """Register the subcommand."""
    parser = subparsers.add_parser(
        "sync",
        help="keep an SQLite or PostgreSQL store complete and current (new, changed, removed)",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--output", "-o", required=True, metavar="STORE",
        help="FILE.sqlite, FILE.sqlite3, FILE.db or postgresql://USER@HOST/DB (JSONL cannot be"
        " updated)",
    )  # fmt: skip
    parser.add_argument(
        "--since", type=instant, metavar="ISO",
        help="where the first pass starts (required on the first run, except with --demo:"
        f" {demo.SYNC_SINCE.days} days ago)",
    )  # fmt: skip
    parser.add_argument(
        "--lookback", type=_duration("--lookback"), default=DEFAULT_LOOKBACK, metavar="DURATION",
        help="how far before the last complete end each pass starts again: 90m, 48h, 2d,"
        f" 1h30m, PT90M, P2D (default {_hours(DEFAULT_LOOKBACK)})",
    )  # fmt: skip
    parser.add_argument("--follow", action="store_true", help="run a pass every --every")
    parser.add_argument(
        "--every", type=_duration("--every"), default=DEFAULT_EVERY, metavar="DURATION",
        help="time from pass start to pass start with --follow: 30s, 5m, 1h30m, PT5M"
        f" (default {_hours(DEFAULT_EVERY)}; 0s: back to back)",
    )  # fmt: skip
    parser.add_argument(
        "--stop-timeout", type=_duration("--stop-timeout"), default=DEFAULT_STOP_TIMEOUT,
        metavar="DURATION",
        help="after SIGTERM, how long downloads in flight may take before they are cut"
        " (default 30s; the next run resumes them)",
    )  # fmt: skip
    add_filter_options(parser)
    parser.add_argument(
        "--content-dest", metavar="DIR",
        help="download the new and changed pieces here (manifest.jsonl), from a queue kept in"
        " the store: failed pieces are retried with backoff across runs, and a run without"
        " --follow exits 1 while any failed piece stays queued",
    )  # fmt: skip
    parser.add_argument(
        "--status", action="store_true",
        help="print the store's coverage and content queue (depth, failed, oldest) and exit;"
        " sends no request",
    )  # fmt: skip
    add_type_option(parser)
    parser.add_argument(
        "--metrics-port", type=_port, metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (needs prometheus-client)",
    )  # fmt: skip
    add_account_option(parser)
    add_client_options(parser, demo_data=demo.SYNC_DATA)
    parser.set_defaults(run=run)


def _check(args: argparse.Namespace) -> None:
    if args.types and not args.content_dest:
        raise InvalidRequestError("--type selects content to download: give --content-dest too")
    check_types(args)
    if args.content_dest:
        check_dest(Path(args.content_dest))
    fresh = not store_exists(args.output)
    if args.status:
        if fresh:
            raise InvalidRequestError(f"{args.output} does not exist")
        return
    if args.since is None and not args.demo and fresh:
        raise InvalidRequestError(f"{args.output} has never been synced: give --since")


class _Say(logging.Handler):
    """Each record as one line on the stderr of the moment (a live display redirects it)."""

    def emit(self, record: logging.LogRecord) -> None:
        say(self.format(record))


def _logging() -> None:
    """Transient failures of the engine, one line each on stderr (the display, not the
    engine's log, says each pass's summary)."""
    handler = _Say()
    handler.setFormatter(logging.Formatter("vccasync: %(message)s"))
    handler.set_name("vccasync-sync-cli")
    logger = logging.getLogger("vccasync.sync")
    for earlier in [h for h in logger.handlers if h.get_name() == "vccasync-sync-cli"]:
        logger.removeHandler(earlier)  # a run before, in this process
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def _notes(quiet: bool) -> Callable[[str], None]:
    """``say`` for the lines ``--quiet`` leaves out (errors and failures are said anyway)."""
    return (lambda _line: None) if quiet else say


async def run(args: argparse.Namespace) -> int:
    """Validate everything, open the store, then run one pass or follow."""
    _check(args)
    if args.status:
        return await _status(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    cut: list[asyncio.TimerHandle] = []
    timed_out = asyncio.Event()

    def cut_short() -> None:
        timed_out.set()
        main.cancel()

    def terminate() -> None:  # a service manager's normal stop, bounded by --stop-timeout
        stop.set()
        if not cut:
            seconds = args.stop_timeout.total_seconds()
            say(
                "vccasync: stopping: "
                + (
                    "no new download starts; those in flight get"
                    if args.content_dest
                    else "the pass under way ends at its next page; what is in flight gets"
                )
                + f" --stop-timeout ({seconds:g}s)"
            )
            cut.append(loop.call_later(args.stop_timeout.total_seconds(), cut_short))

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await _sync(args, stop)
    except asyncio.CancelledError:
        if not timed_out.is_set():
            raise
        main.uncancel()
        say(
            f"vccasync: stopped at --stop-timeout ({args.stop_timeout.total_seconds():g}s):"
            " what was in flight resumes at the next run"
        )
        return 0
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        for handle in cut:
            handle.cancel()


async def _sync(args: argparse.Namespace, stop: asyncio.Event) -> int:
    async with AsyncExitStack() as stack:
        demo_options: dict[str, Any] = {}
        if args.demo:
            spec, config = demo.sync_demo()
            demo_options = {"demo_spec": spec, "demo_config": config}
            if args.since is None:
                args.since = datetime.now(UTC) - demo.SYNC_SINCE
        vcc = await open_client(args, stack, **demo_options)
        observer = _metrics(args, stack)
        note = _notes(args.quiet)
        feed: ContentFeed | None = None

        async def between_passes(seconds: float) -> None:
            if feed is not None:
                feed.check()
                _report(feed, observer, note)
            await _unless_stopped(stop, asyncio.sleep(seconds))

        engine = SyncEngine(
            vcc,
            filters=filters_from_args(args),
            since=args.since,
            lookback=args.lookback,
            observer=observer,
            should_stop=stop.is_set,
            sleep=between_passes,
        )
        content = None
        if args.content_dest:
            content = ALL_TYPES if not args.types else frozenset(args.types)
        options = StoreOptions(engine.filters, engine.limit, args.account, content)
        state = await open_store(args.output, options)
        stack.push_async_callback(state.close)
        engine.state = state
        coverage = await state.coverage()
        if args.since is None and coverage is None:
            raise InvalidRequestError(
                f"{state.target} has not been synced with these filters yet: give --since"
            )
        if observer is not None and coverage is not None:
            observer.complete_up_to(coverage.end)  # the lag counts from the stored state
        await connect(vcc, stack)
        tally = None if args.quiet else SyncTally(vcc.stats, budget=vcc.config.requests_per_minute)
        engine.observer, engine.progress = Observers(observer, tally), tally
        if args.content_dest:
            dest = Path(args.content_dest)
            await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
            feed = ContentFeed(
                vcc.download_all, state, dest, DEFAULT_WORKERS, now=wall_clock, observer=observer
            )
            feed.start()
            watcher = asyncio.create_task(_stop_feed(stop, feed))
            stack.callback(watcher.cancel)
            if tally is not None:
                tally.content = FeedCounts(feed)
        _logging()
        if tally is not None:  # until the run ends: the last downloads included
            stack.enter_context(display_for(tally, sys.stderr, quiet=False))
        try:
            async for _change in engine.changes(every=args.every, once=not args.follow):
                pass
            if feed is not None:
                progress = await (feed.wait() if stop.is_set() else feed.finish())
                note(
                    f"vccasync: content: {count(progress.files_done, 'piece')} downloaded"
                    f" ({format_size(progress.bytes_fetched)} transferred),"
                    f" {progress.files_skipped:,} already complete,"
                    f" {progress.files_failed:,} failed"
                )
        except BaseException:
            if feed is not None:
                feed.cancel()
            raise
        failed = 0
        if feed is not None:
            failed = _report(feed, observer, note, state).queue.failed
        if engine.stopped:
            note(f"vccasync: stopped; the pass under way resumes at the next run of {state.target}")
    return 1 if failed and not args.follow and not stop.is_set() else 0


async def _stop_feed(stop: asyncio.Event, feed: ContentFeed) -> None:
    """On SIGTERM: no new download starts (those in flight go on, up to --stop-timeout)."""
    await stop.wait()
    feed.stop()


def _report(
    feed: ContentFeed,
    observer: Any,
    note: Callable[[str], None],
    state: SyncStore | None = None,
) -> Settled:
    """Say what the downloads did since the last report and how the queue stands (with
    ``--quiet``, only when pieces failed)."""
    settled = feed.report()
    if observer is not None:
        observer.content_settled(settled.failed, settled.queue.failed)
    now = wall_clock()
    if settled.failed or settled.queue.failed:
        say(f"vccasync: content: {settled.summary(now)}")
    elif settled.done or settled.queue.depth:
        note(f"vccasync: content: {settled.summary(now)}")
    if state is not None:
        dropped = state.dropped
        if dropped.superseded or dropped.gone:
            note(
                f"vccasync: content: {count(dropped.gone, 'queued piece')} gone upstream left"
                f" the queue; {count(dropped.superseded, 'queued version')} superseded by a"
                " newer one"
            )
        if settled.queue.failed:
            say(
                f"vccasync: content: {count(settled.queue.failed, 'failed piece')} stay queued"
                f" in {state.target}; the next run retries them (sync --status shows the queue)"
            )
    return settled


async def _status(args: argparse.Namespace) -> int:
    """``sync --status``: the store's coverage per filter set and its content queue; no
    request is sent, no lease taken."""
    options = StoreOptions(account=args.account, read_only=True)
    async with await open_store(args.output, options) as state:
        scopes = await state.status()
        queue = await state.queue_status()
    print(f"store: {state.target} (account {args.account})")
    for scope, covered in scopes:
        where = (
            "never completed a pass"
            if covered is None
            else f"complete from {format_instant(covered.start)} to {format_instant(covered.end)}"
        )
        print(f"filters {scope}: {where}")
    print(queue.summary(wall_clock()))
    print(
        f"queue depth {queue.depth}, failed {queue.failed},"
        f" oldest age {queue.age(wall_clock()):.0f}s"
    )
    return 0


async def _unless_stopped(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> None:
    """Await ``work``, or give it up when asked to stop (its errors are raised)."""
    task, stopped = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()
        stopped.cancel()
    if task.done() and not task.cancelled():
        task.result()


def _metrics(args: argparse.Namespace, stack: AsyncExitStack) -> Any:
    if args.metrics_port is None:
        return None
    try:
        from vccasync.sync._metrics import SyncMetrics, serve_metrics
    except ImportError:
        raise InvalidRequestError(
            "--metrics-port needs prometheus-client: pip install 'vccasync[metrics]'"
        ) from None
    metrics = SyncMetrics()
    server = serve_metrics(metrics, args.metrics_port)
    stack.callback(server.close)
    _notes(args.quiet)(f"vccasync: metrics on http://127.0.0.1:{server.port}/metrics")
    return metrics
