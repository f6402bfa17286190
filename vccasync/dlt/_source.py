"""``vcc_source``: the dlt source of the Interaction Content API (see docs/dlt.md).

Resources of one account: ``interactions`` (merge on ``guid``, incremental on ``start`` with a
lag of ``lookback``; only new and changed interactions become rows, and the removals of the
span) and ``content`` (a transformer of ``interactions``, not selected unless ``content_dest``
is given: the pieces of those rows downloaded under ``content_dest``, one row per archived
piece). With ``accounts``, each account has its own pair, ``interactions_<account>`` and
``content_<account>``, writing the same tables (the ``account`` column tells them apart).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast

import dlt
from attrs import frozen
from dlt.extract.resource import DltResource

from .._client import VccClient
from .._errors import InvalidRequestError, NotFoundError, VccError
from .._instants import RESOLUTION, parse_instant
from .._models import Interaction
from .._query import (
    NO_FILTERS,
    SearchFilters,
    SearchQuery,
    check_instant,
    check_limit,
    make_filters,
)
from .._windows import Page
from ..content._bulk import BulkProgress
from ..content._manifest import MANIFEST_NAME, Manifest
from ..sync import DEFAULT_LOOKBACK, Span, parse_duration
from ._account import AccountRun
from ._ledger import Ledger
from ._rows import (
    INTERACTION_COLUMNS,
    MANIFEST_COLUMNS,
    interaction_from_row,
    interaction_row,
    manifest_row,
    removal_row,
)

__all__ = ["REMOVALS", "vcc_source"]

REMOVALS: Final = ("soft", "hard")
DOWNLOAD_WORKERS: Final = 8
LOOKBACK: Final = f"{int(DEFAULT_LOOKBACK.total_seconds() // 3600)}h"  # as ``sync --lookback``
_SETTINGS: Final = ("client_id", "client_secret", "region", "api_url", "auth_url")


@dlt.source(name="vcc", section="vcc")
def vcc_source(
    client_id: str | None = dlt.secrets.value,
    client_secret: str | None = dlt.secrets.value,
    region: str = "emea",
    api_url: str | None = None,
    auth_url: str | None = None,
    since: Any = None,
    lookback: str = LOOKBACK,
    removals: str = "soft",
    direction: str | None = None,
    connect_from: str | None = None,
    connect_to: str | None = None,
    handling_agent_id: str | None = None,
    account: str = "default",
    accounts: list[str] | None = None,
    content_dest: str | None = None,
    content_types: list[str] | None = None,
    requests_per_minute: int | None = 160,
    limit: int = 1000,
    client_options: dict[str, Any] | None = None,
) -> list[DltResource]:
    """The source of one account (credentials from ``[sources.vcc]``, ``account`` its name in
    the rows) or of several (``accounts``: names, credentials from
    ``[sources.vcc.accounts.<name>]``, falling back to ``[sources.vcc]`` for region and URLs).

    ``since`` (ISO 8601 or a datetime) is where the first run starts; ``lookback`` (``90m``,
    ``48h``, ``2d``, ``PT90M``) the lag each later run starts before the last start loaded;
    ``removals`` "soft" (``removed_at`` set, the row kept) or "hard" (the row deleted);
    filters as ``vccasync interactions``; ``content_dest`` selects the ``content`` resource
    (only ``content_types`` if given); ``client_options``: other ``VccClient`` keywords
    (``concurrency``, ``max_attempts``, ``backoff_initial``, ``timeout``...). Everything is
    checked here, before any request.
    """
    if removals not in REMOVALS:
        raise InvalidRequestError(f"removals must be 'soft' or 'hard', got {removals!r}")
    lag = parse_duration(lookback, name="lookback")
    first = None if since is None else check_instant("since", since)
    filters = make_filters(
        direction=direction,
        connect_from=connect_from,
        connect_to=connect_to,
        handling_agent_id=handling_agent_id,
    )
    check_limit(limit)
    if not isinstance(account, str) or not account:
        raise InvalidRequestError(f"account must be a non-empty name, got {account!r}")
    types = _types(content_types)
    dest = None if content_dest is None else Path(content_dest)
    top = {"region": region, "api_url": api_url, "auth_url": auth_url}
    named = [(account, {**top, "client_id": client_id, "client_secret": client_secret})]
    if accounts is not None:
        named = [(name, _account_settings(name, top)) for name in _names(accounts)]
    plan = _Plan(first, lag.total_seconds(), filters, removals == "hard", limit, dest, types)
    resources: list[DltResource] = []
    for name, settings in named:
        if not settings.get("client_id") or not settings.get("client_secret"):
            raise InvalidRequestError(
                f"no credentials for account {name!r}: set client_id and client_secret in"
                f" [{_section(name, accounts is not None)}] (secrets.toml) or"
                f" {_env(name, accounts is not None)}CLIENT_ID / ..CLIENT_SECRET"
            )
        client_settings: dict[str, Any] = {k: settings.get(k) for k in _SETTINGS}
        client_settings["region"] = client_settings["region"] or "emea"
        client_settings["requests_per_minute"] = requests_per_minute
        client_settings.update(_options(client_options))
        VccClient(**client_settings)  # checks the settings now (no connection is made)
        run = AccountRun(name, client_settings)
        suffix = "" if accounts is None else "_" + _slug(name)
        interactions = _interactions(run, plan, f"interactions{suffix}")
        resources += [interactions, _content(run, plan, interactions, f"content{suffix}")]
    return resources


@frozen
class _Plan:
    """The checked arguments every resource of the source shares."""

    since: datetime | None
    lag: float  # seconds, as dlt's incremental takes it
    filters: SearchFilters
    hard: bool  # hard removals (else soft)
    limit: int
    dest: Path | None
    types: frozenset[str] | None


def _interactions(run: AccountRun, plan: _Plan, name: str) -> DltResource:
    columns = {**INTERACTION_COLUMNS}
    columns["removed_at"] = {**columns["removed_at"], "hard_delete": plan.hard}
    cursor = dlt.sources.incremental[datetime](
        "start", initial_value=plan.since, lag=plan.lag, primary_key=()
    )

    @dlt.resource(
        name=name,
        table_name="interactions",
        primary_key="guid",
        write_disposition="merge",
        columns=columns,
    )
    async def interactions(
        start: dlt.sources.incremental[datetime] = cursor,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        if not dlt.current.resource().selected:  # its state would advance, its rows unloaded
            content = name.replace("interactions", "content", 1)
            raise InvalidRequestError(
                f"{content} needs {name} selected too: it downloads the pieces of the"
                f" interactions loaded, and {name} must not remember rows it does not load"
            )
        now = datetime.now(UTC)
        span = _span(start, now, name)
        ledger = Ledger(dlt.current.resource_state(), keep_versions=not plan.hard)
        ledger.begin(span)
        vcc = await run.client()
        query = SearchQuery(span.start, span.end, plan.filters, plan.limit)
        search = cast(AsyncGenerator[Page, None], vcc.search(query).pages())
        async with aclosing(search) as pages:
            async for page in pages:
                rows = [interaction_row(i, run.name) for i in page.items if ledger.observe(i)]
                if rows:
                    yield rows
        if rows := await _removals(vcc, ledger, span, plan, run.name, now):
            yield rows

    return interactions


def _span(cursor: dlt.sources.incremental[datetime], now: datetime, name: str) -> Span:
    """The instants a run scans: from the cursor's start (its last value less the lag, or
    ``since``) to its ``end_value`` or now, both included unless the cursor's range says
    "open" (then one millisecond, the API's resolution, in from that end)."""
    if cursor.start_value is None:
        raise InvalidRequestError(f"{name}: the first load needs since (an ISO 8601 instant)")
    first = parse_instant(cursor.start_value)
    if cursor.range_start == "open":
        first += RESOLUTION
    last = now
    if cursor.end_value is not None:
        last = parse_instant(cursor.end_value)
        last -= RESOLUTION if cursor.range_end == "open" else timedelta(0)
    return Span(first, max(first, last))


async def _removals(
    vcc: VccClient, ledger: Ledger, span: Span, plan: _Plan, account: str, now: datetime
) -> list[dict[str, Any]]:
    """Rows of the known interactions of ``span`` a complete search did not return: removed
    upstream; or, when filtered, possibly still there outside the filters (asked one by one:
    those are written at their current version and forgotten, not removed)."""
    rows: list[dict[str, Any]] = []
    for known in ledger.unseen(span):
        if plan.filters != NO_FILTERS:
            try:
                current = await vcc.interaction(known.guid)
            except NotFoundError:
                pass
            else:
                if ledger.observe(current):
                    rows.append(interaction_row(current, account))
                ledger.forget(known.guid)
                continue
        last = None if plan.hard else ledger.last_version(known)
        rows.append(removal_row(known.guid, known.start, account, now, last))
        ledger.forget(known.guid)
    return rows


def _content(run: AccountRun, plan: _Plan, parent: DltResource, name: str) -> DltResource:
    archive = _Archive()

    @dlt.transformer(
        data_from=parent,
        name=name,
        table_name="content",
        primary_key=("guid", "content_key"),
        write_disposition="merge",
        columns=MANIFEST_COLUMNS,
        selected=plan.dest is not None,
    )
    async def content(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if plan.dest is None:
            raise InvalidRequestError(f"{name}: give content_dest (where pieces are written)")
        present = [interaction_from_row(r) for r in rows if r.get("removed_at") is None]
        vcc = await run.client()
        lock, manifest = await archive.open(plan.dest)
        async with lock:  # one page's downloads at a time, ``DOWNLOAD_WORKERS`` at once
            return await _download(vcc, present, plan.dest, manifest, plan.types, run.name)

    return content


async def _download(
    vcc: VccClient,
    present: list[Interaction],
    dest: Path,
    manifest: Manifest,
    types: frozenset[str] | None,
    account: str,
) -> list[dict[str, Any]]:
    """Fetch the wanted pieces of ``present`` that ``dest`` lacks; the rows of every wanted
    piece archived at its current version. A piece that fails fails the run (the next run
    repeats this one's rows and fetches it again)."""
    if present:  # what the archive holds at its version is skipped by the download itself
        await asyncio.to_thread(dest.mkdir, parents=True, exist_ok=True)
        progress = await vcc.download_all(
            _each(present), dest, types=types, workers=DOWNLOAD_WORKERS, manifest=manifest
        )
        _check(progress)
    rows = []
    for item in present:
        for piece in item.content:
            if types is not None and str(piece.type) not in types:
                continue
            entry = manifest.get(item.guid, piece.content_key)
            if entry is not None and entry.holds(piece):
                rows.append(manifest_row(entry, account))
    return rows


def _check(progress: BulkProgress) -> None:
    if progress.files_failed:
        first = progress.failures[0] if progress.failures else None
        detail = f" (first: {first.guid} {first.content_key}: {first.error})" if first else ""
        raise VccError(
            f"{progress.files_failed} piece(s) of content could not be downloaded{detail};"
            " the next run fetches them again"
        )


async def _each(items: Sequence[Interaction]) -> AsyncIterator[Interaction]:
    for item in items:
        yield item


class _Archive:
    """The destination's manifest, read once per run, and the lock of its downloads (each
    run has its own event loop)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._manifest: Manifest | None = None

    async def open(self, dest: Path) -> tuple[asyncio.Lock, Manifest]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._lock, self._manifest = loop, asyncio.Lock(), None
        async with self._lock:
            if self._manifest is None:
                self._manifest = await asyncio.to_thread(Manifest.load, dest / MANIFEST_NAME)
        return self._lock, self._manifest


def _options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise InvalidRequestError("client_options must be a table of VccClient keywords")
    taken = set(options) & {*_SETTINGS, "requests_per_minute"}
    if taken:
        raise InvalidRequestError(f"client_options must not set {', '.join(sorted(taken))}")
    return dict(options)


def _types(content_types: Any) -> frozenset[str] | None:
    if content_types is None:
        return None
    if isinstance(content_types, str) or not all(isinstance(t, str) for t in content_types):
        raise InvalidRequestError("content_types must be a list of content type names")
    return frozenset(content_types)


def _names(accounts: Any) -> list[str]:
    if isinstance(accounts, str) or not all(isinstance(a, str) and a for a in accounts):
        raise InvalidRequestError("accounts must be a list of account names")
    slugs = [_slug(a) for a in accounts]
    if len(set(slugs)) != len(slugs):
        raise InvalidRequestError(f"accounts must have distinct names, got {list(accounts)}")
    return list(accounts)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "account"


def _section(name: str, many: bool) -> str:
    return f"sources.vcc.accounts.{_slug(name)}" if many else "sources.vcc"


def _env(name: str, many: bool) -> str:
    return f"SOURCES__VCC__ACCOUNTS__{_slug(name).upper()}__" if many else "SOURCES__VCC__"


def _account_settings(name: str, top: dict[str, Any]) -> dict[str, Any]:
    """An account's credentials from ``[sources.vcc.accounts.<name>]`` (dlt's secrets and
    config: ``secrets.toml``, ``SOURCES__VCC__ACCOUNTS__<NAME>__CLIENT_ID``...), ``<name>``
    in lower case with every run of other characters than a-z and 0-9 as ``_``."""
    settings = dict(top)
    for key in _SETTINGS:
        value: Any = dlt.secrets.get(f"{_section(name, True)}.{key}")
        if value is not None:
            settings[key] = str(value)
    return settings
