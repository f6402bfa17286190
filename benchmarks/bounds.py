"""The shape bound of a slow-page row (pure, no I/O): the best run of a client that learns as
it reads, against which a row's time is judged when the request floor cannot be reached.

The floor counts requests only: it takes every window's pages to be known and cut so that no
page is part-filled. A client that sends nothing blind knows a window only once its first page
is back, and each part it cuts ends with a part-filled page (half a page on average: where a
part's items end is not known to the item). ``shape_seconds`` is the fewest seconds such a
client needs even if, from each window's first page on, it knew exactly how the window's items
fall: every window's first request at the budget's pace (``burst`` at once), then, once a
first page is back, the rest of each window in chains that end together, each page a latency
or the chain's turn of the budget (every chain waits for the others), the budget sending every
request; at most ``concurrency`` requests in flight, so never more than ``concurrency`` a full
page's latency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["shape_seconds"]

HALF = 0.5  # a part's last page: half a page's items on average


def shape_seconds(
    pages: Sequence[float],
    *,
    per_second: float,
    full_page: float,
    half_page: float,
    burst: int = 1,
    concurrency: int = 64,
) -> float:
    """The shape bound in seconds for windows holding ``pages`` pages each (items / page size,
    in the order their first requests go), at ``per_second`` requests, pages of ``full_page``
    seconds (``half_page`` when half-filled), at most ``concurrency`` chains at once."""
    if not pages:
        return 0.0
    per_second = min(per_second, concurrency / full_page)  # requests in flight at most
    firsts = [max(0, i - burst + 1) / per_second for i in range(len(pages))]

    def requests(held: float, parts: int) -> float:
        """A window's requests: exact unsplit, half a request a part once cut."""
        return math.ceil(held) if parts <= 1 else held + HALF * parts

    def feasible(end: float) -> bool:
        chains, parts = len(pages), [1] * len(pages)
        for _ in range(64):  # the cycle grows with the chains: settle both
            cycle = max(full_page, chains / per_second)
            for i, (first, held) in enumerate(zip(firsts, pages, strict=True)):
                if held <= 1:  # one page: the first is the last
                    if first + (full_page if held == 1 else half_page) > end:
                        return False
                    continue
                # the fewest parts whose chains end in time (the fewest requests): a part
                # of ``f`` pages is ``f - HALF`` full pages, then its last, half-filled
                room = end - (first + full_page) - half_page
                if room < 0:
                    return False
                parts[i] = max(1, math.ceil((held - 1) / (room / cycle + HALF) - 1e-9))
                # its rest goes after its first page is back, at the budget's pace at best
                rest = requests(held, parts[i]) - 1
                if first + full_page + (rest - 1) / per_second + half_page > end:
                    return False
            wanted = sum(parts)
            if wanted <= chains:
                break
            chains = wanted
        total = sum(requests(held, k) for held, k in zip(pages, parts, strict=True))
        # no window's rest goes before the first of the first pages is back
        rest = total - len(pages)
        after_first = full_page + (rest - 1) / per_second + half_page if rest > 0 else 0.0
        return max((total - burst) / per_second + half_page, after_first) <= end

    # unsplit, each page at its turn of the budget after every other: surely feasible
    low, high = 0.0, (sum(map(math.ceil, pages)) + 1) * (full_page + 1 / per_second) + full_page
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if feasible(middle) else (middle, high)
    return high
