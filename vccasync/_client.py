"""``VccClient``: the public entry point, an async context manager owning one HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterable, Collection, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp

from ._config import config_from_env, make_config
from ._converter import structure_interaction
from ._deletes import DeleteFailure, DeleteOutcome, Deleter, Guard
from ._errors import InvalidRequestError, VccError
from ._http.session import Session, SessionStats, path_segment
from ._models import Interaction
from ._query import Filtering, SearchQuery, make_filters, make_query
from ._search import InteractionSearch
from ._tracing import Tracing
from ._windows import WindowPlan
from .content._bulk import BulkProgress, PieceDone, download_all
from .content._download import Destination, DownloadResult, download
from .content._manifest import Manifest
from .sync import DEFAULT_EVERY, DEFAULT_LOOKBACK, ChangeFeed, Duration, SyncEngine
from .sync._engine import SearchParts

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["VccClient"]

DOWNLOAD_WORKERS = 8  # downloads at once unless told


class VccClient:
    """Async client of the VCC Interaction Content API.

    ``concurrency`` (default 64: 960 requests a minute of 4 s pages) caps the windows and
    sub-windows fetched at once (a search runs as many as the budget times the observed
    latency needs, up to that; before an answer, 8 and more as the first requests go
    unanswered; 8 without a budget; ordered, at most the buffer's full pages, 48);
    ``requests_per_minute`` (default 160) is the one client-side budget shared by every
    request (None switches it off); it is lowered after a 429 and creeps back. Deletions go
    one at a time within ``deletes_per_minute`` (default 16, also counted in the shared
    budget). Other keywords are the fields of ``ClientConfig`` (retry attempts, backoff,
    timeouts); a wrong type or value is an ``InvalidRequestError`` before any request.
    ``tracer_provider``: where OpenTelemetry spans go (``pip install "vccasync[otel]"``);
    None (default): the global provider, once the application set one, else nowhere (see
    ``docs/observability.md``).
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        region: str = "emea",
        api_url: str | None = None,
        auth_url: str | None = None,
        tracer_provider: TracerProvider | None = None,
        **options: Any,
    ) -> None:
        self.config = make_config(
            client_id=client_id,
            client_secret=client_secret,
            region=region,
            api_url=api_url or "",
            auth_url=auth_url or "",
            **options,
        )
        self.tracing = Tracing.of_client(tracer_provider, self.config.client_id, self.config.region)
        self._http: aiohttp.ClientSession | None = None
        self._session: Session | None = None
        self._deleter: Deleter | None = None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        **overrides: Any,
    ) -> Self:
        """A client configured by ``VCC_CLIENT_ID``, ``VCC_CLIENT_SECRET``, ``VCC_REGION``,
        ``VCC_API_URL`` and ``VCC_AUTH_URL``; keyword arguments override them (None for those
        five means "from the environment"; for the others it is a value:
        ``requests_per_minute=None`` switches the budget off); ``tracer_provider`` as for
        the constructor."""
        config = config_from_env(environ, **overrides)
        client = cls.__new__(cls)
        client.config = config
        client.tracing = Tracing.of_client(tracer_provider, config.client_id, config.region)
        client._http = client._session = client._deleter = None
        return client

    def __repr__(self) -> str:
        return (
            f"VccClient(client_id={self.config.client_id!r}, region={self.config.region!r},"
            f" api_url={self.config.api_url!r})"
        )

    async def __aenter__(self) -> Self:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(10.0, self.config.timeout), sock_read=self.config.timeout
        )
        connector = aiohttp.TCPConnector(limit=max(10, self.config.concurrency * 2))
        self._http = aiohttp.ClientSession(timeout=timeout, connector=connector)
        self._session = Session(self.config, self._http, self.tracing)
        self._deleter = Deleter(self._session, self.config)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = self._session = self._deleter = None

    @property
    def session(self) -> Session:
        """The open session (requests, retries, 429s so far in ``session.stats``)."""
        if self._session is None:
            raise VccError("use the client inside 'async with VccClient(...) as vcc:'")
        return self._session

    @property
    def stats(self) -> SessionStats:
        """Request counters of this client."""
        return self.session.stats

    def interactions(
        self,
        start: datetime | str,
        end: datetime | str,
        *,
        limit: int = 1000,
        ordered: bool = True,
        plan: WindowPlan | None = None,
        **filters: Filtering,
    ) -> InteractionSearch:
        """Every interaction with content from ``start`` to ``end`` (both included) that
        passes ``filters``: ``direction``, ``connect_from``, ``connect_to`` (prefixes),
        ``handling_agent_id`` (see ``vccasync._query.FILTERS``).

        Validates everything before the first request (``InvalidRequestError``). Naive
        datetimes are UTC. ``plan`` resumes a search: the windows still to run, each with
        the continuation token to start from.
        """
        query = make_query(start, end, limit=limit, filters=make_filters(**filters))
        return self.search(query, ordered=ordered, plan=plan)

    def search(
        self, query: SearchQuery, *, ordered: bool = True, plan: WindowPlan | None = None
    ) -> InteractionSearch:
        """The search ``query`` describes (see ``make_query``), as ``interactions`` runs it."""
        if not isinstance(query, SearchQuery):
            raise InvalidRequestError(f"query must be a SearchQuery (make_query), got {query!r}")
        session = self.session
        return InteractionSearch(
            session,
            query,
            concurrency=self.config.concurrency,
            ordered=ordered,
            plan=plan,
            budget=session.limiter,
        )

    async def interaction(self, guid: str) -> Interaction:
        """One interaction by guid; ``NotFoundError`` when it does not exist or has no content."""
        if not isinstance(guid, str) or not guid.strip():
            raise InvalidRequestError("guid must be a non-empty string")
        data = await self.session.get_json(f"/interactions/{path_segment(guid)}")
        return structure_interaction(data)

    async def download(
        self,
        guid: str,
        content_key: str,
        destination: Destination,
        *,
        expected_length: int | None = None,
        last_modified: str | None = None,
    ) -> DownloadResult:
        """Stream one piece of content to a path or a writable binary file.

        Chunked (memory does not grow with the file), through the client's token, rate budget
        and retries. A path is written through ``<path>.part``, which a later call continues
        with ``Range`` and ``If-Range`` when it holds the same version (``expected_length``
        and ``last_modified``: ``Content.content_length`` and its ``lastModified`` text);
        ``expected_length`` is checked, a mismatch retried, then raised as
        ``ResponseValidationError``. ``NotFoundError`` on 404.
        """
        return await download(
            self.session,
            guid,
            content_key,
            destination,
            expected_length=expected_length,
            last_modified=last_modified,
        )

    async def download_all(
        self,
        interactions: AsyncIterable[Interaction],
        dest: str | Path,
        *,
        types: Collection[str] | None = None,
        workers: int | None = None,
        progress: BulkProgress | None = None,
        manifest: Manifest | None = None,
        on_piece: PieceDone | None = None,
    ) -> BulkProgress:
        """Download the content of ``interactions`` (e.g. ``vcc.interactions(start, end)``)
        under ``dest``, ``workers`` at once (default 8, at most the client's ``concurrency``)
        while the search pages on; resumable (see :mod:`vccasync.content._bulk`). Only
        ``types`` if given; ``manifest``: ``dest``'s, if the caller already loaded it;
        ``on_piece(guid, key, error)`` is told how each piece ended (error None: on disk)."""
        return await download_all(
            self.session,
            interactions,
            dest,
            types=types,
            workers=min(DOWNLOAD_WORKERS, self.config.concurrency) if workers is None else workers,
            progress=progress,
            manifest=manifest,
            on_piece=on_piece,
        )

    @property
    def _deletes(self) -> Deleter:
        if self._deleter is None:
            raise VccError("use the client inside 'async with VccClient(...) as vcc:'")
        return self._deleter

    async def reserve_deletion(self) -> None:
        """Wait for the next slot of the deletion budget, kept for the next deletion: a check
        made after this (a fetch of what is about to be deleted) is not aged by that wait."""
        await self._deletes.reserve()

    async def delete_interaction(self, guid: str, *, guard: Guard | None = None) -> DeleteOutcome:
        """Delete one interaction and all its content (``DELETE /interactions/{guid}``).

        ``DELETED``, or ``ALREADY_GONE`` on a 404. Deletions of a client go one at a time,
        within ``deletes_per_minute``, with a token of the delete scope (requested at the
        first deletion); ``PermissionDeniedError`` when the client lacks that scope.
        ``guard`` is called just before each send (after every wait, retries included) and
        refuses it by raising: nothing is sent then.
        """
        return await self._deletes.interaction(guid, guard=guard)

    async def delete_content(
        self, guid: str, content_key: str, *, guard: Guard | None = None
    ) -> DeleteOutcome:
        """Delete one piece of content (``DELETE /interactions/{guid}/content/{key}``); as
        :meth:`delete_interaction`."""
        return await self._deletes.content(guid, content_key, guard=guard)

    async def delete_interactions(
        self, guids: Iterable[str], *, guard: Guard | None = None
    ) -> list[DeleteFailure]:
        """Delete many interactions, 1000 per ``POST /interactions/delete-batch``, one batch at
        a time; the guids the API did not delete (those already gone are not failures)."""
        return await self._deletes.interactions(guids, guard=guard)

    def changes(
        self,
        since: datetime | str,
        *,
        lookback: Duration = DEFAULT_LOOKBACK,
        every: Duration = DEFAULT_EVERY,
        once: bool = False,
        **filters: Filtering,
    ) -> ChangeFeed:
        """New, changed and removed interactions from ``since`` on, pass after pass.

        Each pass scans ``[end of the last complete pass - lookback, now]`` (the first from
        ``since``), one every ``every`` (start to start; a single one with ``once``), and
        yields ``Change(kind, interaction)``: "new", "changed" (``previous`` holds the last
        known version) or "removed" (the last known version; judged only after a complete
        pass). Durations are timedeltas or text (``90m``, ``48h``, ``PT90M``). State lives in
        memory, bounded by the lookback span. Filters as in :meth:`interactions`; every
        argument is checked at once. Closing or cancelling the iteration stops it cleanly.
        """
        parts = SearchParts(self.search, self.interaction, lambda: self.stats, self.tracing)
        engine = SyncEngine(parts, filters=make_filters(**filters), since=since, lookback=lookback)
        return engine.changes(every=every, once=once)
