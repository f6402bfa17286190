"""What the ``interactions`` resource remembers between runs, kept in dlt's resource state.

Per interaction of the incremental span (the cursor's last value minus the lag, up to now):
its start, the fingerprint of the version loaded (:mod:`vccasync.sync._fingerprint`) and, for
soft removals, that version's API JSON, to write it again with ``removed_at``. A run compares
each interaction the search returns with it (:func:`vccasync.sync._diff.classify`): only new and
changed ones become rows. Once the search of the span is complete, the known interactions of
the span it did not return are the removals (:func:`vccasync.sync._diff.removed`). dlt saves the
state with the load package of a completed extraction only; a run that fails or is killed
leaves the state as it was, and the next run repeats its changes (merged, not duplicated).
The state holds about 100 bytes per interaction of the span (hard removals), or about the
size of its JSON (soft).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from .._converter import structure_interaction
from .._instants import format_instant, parse_instant
from .._jsonio import loads
from .._models import Interaction
from ..sync import ChangeKind, Known, Span
from ..sync._diff import classify, removed
from ..sync._fingerprint import snapshot

__all__ = ["Ledger"]


class Ledger:
    """The known interactions of one resource, in ``state`` (dlt's resource state dict).

    ``keep_versions``: keep each version's JSON (soft removals rewrite the last version).
    """

    def __init__(self, state: MutableMapping[str, Any], *, keep_versions: bool) -> None:
        self._known: dict[str, list[Any]] = state.setdefault("known", {})
        self._keep = keep_versions
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._known)

    def begin(self, span: Span) -> None:
        """Start a pass over ``span``: what starts before it will not be seen nor judged."""
        floor = span.start
        for guid in [g for g, (start, *_) in self._known.items() if parse_instant(start) < floor]:
            del self._known[guid]
        self._seen = set()

    def observe(self, item: Interaction) -> ChangeKind | None:
        """Remember that the pass saw ``item``; "new", "changed", or None when unchanged."""
        data, print_ = snapshot(item)
        known = self._get(item.guid)
        kind = classify(print_, known)
        self._seen.add(item.guid)
        if kind is not None or (self._keep and known is not None and not known.data):
            version = data.decode() if self._keep else None  # kept from now on when wanted
            self._known[item.guid] = [format_instant(item.start), print_.hex(), version]
        return kind

    def unseen(self, span: Span) -> list[Known]:
        """Known interactions of ``span`` the pass did not see (after a complete search)."""
        known = (self._get(guid) for guid in self._known)
        return removed([k for k in known if k is not None], span, self._seen)

    def forget(self, guid: str) -> None:
        """Drop ``guid`` (removed, or out of the filters): if it comes back, it is new."""
        self._known.pop(guid, None)

    def last_version(self, known: Known) -> Interaction | None:
        """The version loaded last, when versions are kept."""
        return structure_interaction(loads(known.data)) if known.data else None

    def _get(self, guid: str) -> Known | None:
        entry = self._known.get(guid)
        if entry is None:
            return None
        start, print_hex, version = entry
        data = version.encode() if version else b""
        return Known(guid, parse_instant(start), bytes.fromhex(print_hex), data)
