"""The one contract of a sync store: rows, checkpoint, removals, content queue, writer lease.

A sync store is where ``vccasync sync`` keeps an account's interactions and everything it needs
to go on across runs. The command depends on :class:`SyncStore` only; which class implements
it is chosen from the ``--output`` in one place (:mod:`vccasync.stores._registry`). See
docs/stores.md for how to add a backend.

What every implementation guarantees:

- **Rows and checkpoint** (:class:`~vccasync.sync._state.SyncState`): each page's new and
  changed rows, the guids it returned, its pieces to download and the pass's checkpoint commit
  in one transaction; a pass killed anywhere resumes where it stood.
- **Removals**: :meth:`~vccasync.sync._state.SyncState.unseen` judges only rows the store held
  when the pass began (a row another writer wrote since is never a candidate).
- **Writer lease**: opening for writing takes the account's lease (whatever the filters) or
  refuses at once with ``InvalidRequestError``; every write transaction checks the lease's
  fencing token inside itself and raises ``LeaseLostError`` (writing nothing) when it is gone.
- **Content queue**: when opened with ``content`` (the types wanted, or all), the pieces that
  new and changed rows bring are queued in their rows' transaction; :meth:`SyncStore.due`,
  :meth:`SyncStore.settle` and :meth:`SyncStore.queue_status` drain and report it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from attrs import frozen

from .._query import MAX_LIMIT, NO_FILTERS, SearchFilters
from ..sync._diff import Span
from ..sync._queue import QueuedPiece, QueueStatus, Settlement
from ..sync._state import SyncState

__all__ = ["ALL_TYPES", "Dropped", "StoreOptions", "SyncStore"]

ALL_TYPES: frozenset[str] = frozenset({"*"})
"""``StoreOptions.content`` that queues pieces of every type."""


@frozen
class StoreOptions:
    """How a sync opens its store.

    ``filters`` and ``limit``: the sync's (the checkpoint is kept per filter set); ``account``:
    whose rows (one writer lease per account); ``content``: queue the pieces of new and
    changed rows (all of them: the store owes the archive every piece) and download those of
    these types (:data:`ALL_TYPES`: every type; None: no queue is written);
    ``read_only``: no lease, no writes (``sync --status``).
    """

    filters: SearchFilters = NO_FILTERS
    limit: int = MAX_LIMIT
    account: str = "default"
    content: frozenset[str] | None = None
    read_only: bool = False

    @property
    def download_types(self) -> frozenset[str] | None:
        """The content types the queue holds and downloads drain (None: every type)."""
        return None if self.content is None or self.content == ALL_TYPES else self.content


@frozen
class Dropped:
    """What left the queue, or changed in it, without a download this run: ``superseded``,
    queued versions replaced by a newer one (the row stays, for the new version); ``gone``,
    rows of pieces gone upstream (interaction removed, piece no longer listed, or a 404)."""

    superseded: int = 0
    gone: int = 0


class SyncStore(SyncState, Protocol):
    """A store a sync writes: :class:`~vccasync.sync._state.SyncState` plus lease, content queue
    and status. Every method may raise ``LeaseLostError`` once the lease is gone."""

    @property
    def target(self) -> str:
        """The store's name for messages (never a password)."""

    @property
    def dropped(self) -> Dropped:
        """Queue rows dropped by this run so far (superseded or gone)."""

    async def due(
        self, now: datetime, limit: int, skip: Collection[tuple[str, str]] = ()
    ) -> list[QueuedPiece]:
        """Up to ``limit`` queued pieces whose next try is at ``now`` or before (oldest first),
        leaving out ``skip`` (those being downloaded)."""

    async def settle(self, outcomes: Sequence[Settlement], now: datetime) -> None:
        """Record downloads' outcomes in one transaction: a downloaded or gone piece leaves the
        queue (unless its row names another version by now), a failed one gets one more
        attempt, its error and a next try after :func:`~vccasync.sync._queue.backoff`."""

    async def queue_status(self) -> QueueStatus:
        """Depth, failed rows, oldest queued instant and earliest next try of a failed row."""

    async def wait_queued(self, seconds: float) -> None:
        """Return when pieces were queued by this process since the last call, or after
        ``seconds``."""

    async def status(self) -> list[tuple[str, Span | None]]:
        """Each filter set kept in the store (``{}``: none) with its coverage."""

    async def close(self) -> None:
        """Release the lease and the connection."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
