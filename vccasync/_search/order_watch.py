"""The order watch: one search's view of the server's order, and when repairs are due (pure)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .._windows import Page, Repair, Window

__all__ = ["OrderWatch"]

log = logging.getLogger("vccasync")


class OrderWatch:
    """One search's view of the server's order: checked on every page fetched, repaired once
    broken, the repairs spawned as pages are delivered.

    Until a page fetched breaks the order, every split is remembered (as the :class:`Repair`
    its window would need); the first page that breaks it logs one warning and stops
    splitting. Repairs are spawned in the order pages reach the consumer, never ahead of it:
    the page that broke the order spawns the repairs of the splits delivered before it, a
    split delivered after it spawns its own. So a consumer (a checkpoint) is never handed a
    repair window while the window it repairs is still pending from before its split (a
    split fetched ahead): a search resumed then runs that window again, unsplit, alone.

    A search resumed with splits made before and the order not seen broken may never fetch a
    page out of order again (few windows left): it first checks the page after one split's
    dropped token (:meth:`PageChain.verify`); out of order, it breaks the order, and the next page
    delivered spawns the repairs.
    """

    def __init__(self, repairs: Iterable[Repair] = (), *, broken: bool = False) -> None:
        """A watch resumed with the ``repairs`` of a checkpoint: the splits still to re-cover
        should the order break, or (``broken``) the repair windows already running."""
        resumed = list(repairs)
        self.broken = broken  # a page fetched broke the order: no more splitting
        self._announced = broken  # a page delivered did: each later split spawns its repair
        self._breaker: Page | None = None  # the page that broke it, until delivered
        self._announce = False  # the order broke on no page: the next page delivered tells
        self.unverified = [] if broken else resumed[-1:]  # a split of an earlier run, to check
        self._due: list[Repair] = [] if broken else resumed  # of the splits delivered
        self._splits = len(self._due)  # splits so far, delivered or not
        self.repairs: dict[Window, Repair] = {r.window: r for r in resumed} if broken else {}

    def split(self) -> None:
        """Count a split made on the strength of the order (its repair comes with its page:
        see :meth:`delivered`)."""
        self._splits += 1

    def violated(self, window: Window) -> bool:
        """Note a page of ``window`` out of order; whether it is the first (the caller
        names it with :meth:`broke_on`)."""
        if self.broken:
            return False
        self.broken = True
        log.warning(
            "the API did not page window %s in ascending start: no more splitting in this"
            " search, every window de-duplicated by guid, %d split window(s) re-covered",
            window.key,
            self._splits,
        )
        return True

    def broke_on(self, page: Page | None) -> None:
        """``page`` is the first page out of order (None: a page no window delivers, so the
        next page delivered spawns the repairs)."""
        self._breaker, self._announce = page, page is None

    def delivered(self, page: Page) -> tuple[Window, ...]:
        """``page`` reaches the consumer: the repair windows it spawns (none while the order
        holds: a split's repair is kept for the page that will break it)."""
        if page is self._breaker or self._announce:
            self._announced, self._breaker, self._announce = True, None, False
            due, self._due = self._due, []
            due += [page.repair] if page.repair is not None else []
        elif page.repair is None:
            return ()
        elif self._announced:
            due = [page.repair]
        else:
            self._due.append(page.repair)
            return ()
        due.sort(key=lambda r: r.window)
        self.repairs.update((r.window, r) for r in due)
        return tuple(r.window for r in due)
