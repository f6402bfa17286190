"""A backfill as data: ``plan`` cuts ranges of many accounts into tasks, ``run_task`` runs one.

A task is plain JSON (account, range, filters, rate share); it names its account and never
carries credentials (see ``vccasync.distributed._accounts``). Tasks of a plan do not
overlap, so running all of them, in any order, anywhere, writes each interaction once; each
resumes from the checkpoint it shares in the database with every other run of the same task
and page size.

Rate shares: ``plan`` assumes at most ``parallel`` tasks of one account run at once and gives
each ``budget / parallel`` minus one request per rate-limit window, the slack that keeps the
account under its budget in every sliding window despite network jitter. A task also waits
one interval before its first request, so that a task started in the slot of one that just
ended does not follow its last request too closely. Together: an account never gets more
than its budget, however its tasks are scheduled, as long as at most ``parallel`` run at once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from attrs import field, frozen

from .._client import VccClient
from .._config import DEFAULT_RATE
from .._converter import converter
from .._errors import InvalidRequestError
from .._instants import format_instant, parse_instant
from .._jsonio import loads
from .._query import FILTER_BY_NAME, MAX_LIMIT, SearchQuery, make_filters, make_query
from .._windows import RESOLUTION
from ..stores._base import write_search
from ..stores._postgres import PostgresQuerySink, require_postgres
from ._accounts import credentials

__all__ = [
    "FILTERS",
    "SPLITS",
    "Task",
    "TaskResult",
    "plan",
    "plan_search",
    "run_task",
    "share",
    "task_from_json",
]

FILTERS = tuple(FILTER_BY_NAME)  # a task's filters, by name
SPLITS = ("month", "week", "day", "none")
Split = Literal["month", "week", "day", "none"]
API_WINDOW = 60.0  # seconds: the API's rate limit counts requests per sliding minute


def _check_filters(_: object, __: object, filters: Mapping[str, str]) -> None:
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise InvalidRequestError(
            f"unknown filters {', '.join(sorted(unknown))} (known: {', '.join(FILTERS)})"
        )


@frozen(kw_only=True)
class Task:
    """One account's search over one range, with the share of the account's request budget.

    ``parallel`` is how many tasks of the account the share assumes run at once; ``id`` names
    the task (the same account, range and filters: the same id). Its checkpoint in the
    database is that of its search (``checkpoint_name``), page size included.
    """

    account: str
    start: datetime = field(converter=parse_instant)
    end: datetime = field(converter=parse_instant)
    filters: Mapping[str, str] = field(factory=dict, validator=_check_filters)
    requests_per_minute: float | None = None
    parallel: int = 1

    def __attrs_post_init__(self) -> None:
        if not self.account or not isinstance(self.account, str):
            raise InvalidRequestError("a task needs an account name")
        self.search_query()  # raises InvalidRequestError
        if self.requests_per_minute is not None and self.requests_per_minute <= 0:
            raise InvalidRequestError("a task's requests_per_minute must be positive")
        if self.parallel < 1:
            raise InvalidRequestError("a task's parallel must be at least 1")

    def search_query(self, limit: int = MAX_LIMIT) -> SearchQuery:
        """The search this task runs, ``limit`` interactions a page."""
        return make_query(self.start, self.end, limit=limit, filters=make_filters(**self.filters))

    @property
    def id(self) -> str:
        """``START/END`` and the filters as a query string: the task's name."""
        span = f"{format_instant(self.start)}/{format_instant(self.end)}"
        return span + (f"?{urlencode(sorted(self.filters.items()))}" if self.filters else "")

    def to_json(self) -> dict[str, Any]:
        """The task as JSON-ready data (``task_from_json`` reads it back)."""
        out: dict[str, Any] = converter.unstructure(self, Task)
        out["filters"] = dict(self.filters)
        return out


def task_from_json(data: Mapping[str, Any] | str | bytes) -> Task:
    """A task from its JSON (text or decoded); bad input raises ``InvalidRequestError``."""
    try:
        raw = loads(data) if isinstance(data, str | bytes) else data
    except ValueError as exc:
        raise InvalidRequestError(f"a task must be JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise InvalidRequestError("a task must be a JSON object")
    unknown = set(raw) - {"account", "start", "end", "filters", "requests_per_minute", "parallel"}
    if unknown:
        raise InvalidRequestError(f"unknown task fields: {', '.join(sorted(unknown))}")
    try:
        task: Task = converter.structure(raw, Task)
    except InvalidRequestError:
        raise
    except Exception as exc:  # cattrs reports type errors in many shapes
        raise InvalidRequestError(f"not a valid task: {exc!r}") from None
    return task


def _boundaries(start: datetime, end: datetime, split_by: Split) -> list[datetime]:
    """Instants in (start, end] where a new task begins (calendar units in start's zone)."""
    if split_by == "none":
        return []
    if split_by == "day":
        cursor = start.replace(hour=0, minute=0, second=0, microsecond=0)
        step = timedelta(days=1)
    elif split_by == "week":  # weeks begin on Monday
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        cursor, step = day - timedelta(days=day.weekday()), timedelta(days=7)
    else:
        cursor = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        step = timedelta(0)
    out: list[datetime] = []
    while True:
        if split_by == "month":
            year, month = divmod(cursor.month, 12)
            cursor = cursor.replace(year=cursor.year + year, month=month + 1)
        else:
            cursor += step
        if cursor > end:
            return out
        if cursor > start:
            out.append(cursor)


def share(requests_per_minute: float, parallel: int, window: float = API_WINDOW) -> float:
    """The rate of each of ``parallel`` tasks: an equal part of the budget, less one request
    per rate-limit ``window`` (seconds) of slack."""
    rate = requests_per_minute / parallel - 60.0 / window
    if rate <= 0:
        raise InvalidRequestError(
            f"a budget of {requests_per_minute:g} requests/minute is too small for {parallel}"
            " tasks at once: lower parallel"
        )
    return rate


def plan(
    start: datetime | str,
    end: datetime | str,
    *,
    accounts: Sequence[str],
    filters: Mapping[str, str | None] | None = None,
    split_by: Split = "month",
    requests_per_minute: float | Mapping[str, float] = DEFAULT_RATE,
    parallel: int = 4,
    rate_window: float = API_WINDOW,
) -> list[Task]:
    """The tasks of a backfill of ``accounts`` over [start, end] (both included).

    ``filters`` are ``make_query`` keywords; the rest is as for ``plan_search``.
    """
    kept: dict[str, Any] = {k: str(v) for k, v in (filters or {}).items() if v is not None}
    _check_filters(None, None, kept)
    return plan_search(
        make_query(start, end, **kept),
        accounts=accounts,
        split_by=split_by,
        requests_per_minute=requests_per_minute,
        parallel=parallel,
        rate_window=rate_window,
    )


def plan_search(
    query: SearchQuery,
    *,
    accounts: Sequence[str],
    split_by: Split = "month",
    requests_per_minute: float | Mapping[str, float] = DEFAULT_RATE,
    parallel: int = 4,
    rate_window: float = API_WINDOW,
) -> list[Task]:
    """The tasks of a backfill of ``accounts``, each searching part of ``query``'s range.

    The range is cut at calendar months (or weeks from Monday, days, or not at all) into
    tasks that do not overlap, each with the query's filters (the page size is
    ``run_task``'s). ``requests_per_minute`` is each account's budget (one number, or one
    per account); ``parallel`` how many tasks of an account may run at once.
    ``rate_window`` is the length in seconds of the API's sliding rate-limit window.
    """
    if split_by not in SPLITS:
        raise InvalidRequestError(f"split_by must be one of {', '.join(SPLITS)}, got {split_by!r}")
    if not accounts or len(set(accounts)) != len(accounts):
        raise InvalidRequestError("accounts must be a non-empty list of distinct names")
    if parallel < 1:
        raise InvalidRequestError("parallel must be at least 1")
    edges = [query.start, *_boundaries(query.start, query.end, split_by)]
    ranges = [(a, b - RESOLUTION) for a, b in itertools.pairwise(edges)]
    ranges.append((edges[-1], query.end))
    filters = query.filters.as_text()
    tasks = []
    for account in accounts:
        budget = (
            requests_per_minute
            if isinstance(requests_per_minute, int | float)
            else requests_per_minute.get(account)
        )
        if budget is None:
            raise InvalidRequestError(f"no requests_per_minute for account {account!r}")
        slots = min(parallel, len(ranges))
        rate = share(float(budget), slots, rate_window)
        tasks += [
            Task(
                account=account,
                start=a,
                end=b,
                filters=filters,
                requests_per_minute=rate,
                parallel=slots,
            )
            for a, b in ranges
        ]
    return tasks


@frozen
class TaskResult:
    """What one run of a task did."""

    account: str
    task: str
    written: int
    requests: int
    seconds: float


async def run_task(
    task: Task,
    output: str,
    *,
    credentials_for: Callable[[str], Mapping[str, Any]] | None = None,
    accounts_file: str | None = None,
    page_size: int = 1000,
    **client_options: Any,
) -> TaskResult:
    """Run ``task`` into the PostgreSQL database ``output``, resuming from its checkpoint.

    Credentials come from ``credentials_for(account)`` (VccClient keywords), by default from
    the environment or ``accounts_file`` (see ``vccasync.distributed._accounts``).
    ``client_options`` are
    further ``VccClient`` keywords (``concurrency``, retry settings, ...); ``page_size`` is
    the ``limit`` of each search request.
    """
    require_postgres(output)
    found = (credentials_for or (lambda a: credentials(a, accounts_file=accounts_file)))(
        task.account
    )
    options = {**client_options, "requests_per_minute": task.requests_per_minute}
    query = task.search_query(limit=page_size)
    began = time.monotonic()
    async with (
        await PostgresQuerySink.open(output, query, account=task.account) as sink,
        VccClient(**found, **options) as vcc,
    ):
        checkpoint = sink.checkpoint
        before = checkpoint.written
        if not checkpoint.done:
            if task.requests_per_minute is not None:
                await vcc.session.spend_budget()  # the hand-over gap (see the module doc)
            await write_search(sink, vcc.search(query, ordered=False, plan=checkpoint.plan()))
        written, requests = checkpoint.written - before, vcc.stats.requests
    return TaskResult(task.account, task.id, written, requests, time.monotonic() - began)
