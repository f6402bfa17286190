"""The delete endpoints of the fake API: one interaction, one piece of content, a batch.

``DELETE /interactions/{guid}`` and ``DELETE /interactions/{guid}/content/{key}`` answer 204,
or 404 when there is nothing (left) to delete; ``POST /interactions/delete-batch`` takes
``{"guids": [...]}`` (1 to 1000) and answers 200 ``{"failures": [{guid, message,
statusCode}]}`` (404 for a guid not there, 400 for one that is not a guid). Deleted data
disappears from search, get-one and content (the dataset's ``hide`` and ``removed_keys``).
Like the real API, deletions must come one at a time: one that arrives while another is
being served gets a 429, and so does one over ``DeleteConfig.per_minute``. The shared rate
limit, bearer token, scope (403 without ``interaction-content:delete``) and faults are
checked first, by the app.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
from aiohttp import web

from vccasync.fake._dataset import Dataset
from vccasync.fake._limits import SlidingWindow

__all__ = ["MAX_BATCH", "DeleteConfig", "DeleteStats", "add_routes", "remove"]

MAX_BATCH: Final = 1000
_GUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

Handler = Callable[[web.Request, Any], Awaitable[tuple[int, object]]]
Wrap = Callable[[Handler, str], Callable[[web.Request], Awaitable[web.StreamResponse]]]


@attrs.frozen
class DeleteConfig:
    """Deletion behaviour: a rate limit of its own (None: none) and how long one takes."""

    per_minute: int | None = None
    window: float = 60.0
    latency: float = 0.0


@attrs.define
class DeleteStats:
    """What the delete endpoints saw: requests, overlaps, what was removed."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0  # deletion requests served at the same time, at most
    concurrent_refused: int = 0  # 429s for a deletion sent while another was in flight
    rate_limited: int = 0  # 429s over ``DeleteConfig.per_minute``
    interactions_deleted: int = 0
    content_deleted: int = 0
    batch_sizes: list[int] = attrs.field(factory=list)

    def reset(self) -> None:
        """Zero every counter in place (``in_flight`` keeps counting deletions still running)."""
        fresh = DeleteStats(in_flight=self.in_flight, max_in_flight=self.in_flight)
        for field in attrs.fields(DeleteStats):
            setattr(self, field.name, getattr(fresh, field.name))


def add_routes(
    app: web.Application,
    root: str,
    wrap: Wrap,
    dataset: Dataset,
    config: DeleteConfig,
    stats: DeleteStats,
) -> None:
    """Register the delete endpoints under ``root``; ``wrap`` adds the app's common checks."""
    deletes = _Deletes(dataset, config, stats)
    app.router.add_post(f"{root}/interactions/delete-batch", wrap(deletes.batch, "delete_requests"))
    app.router.add_delete(f"{root}/interactions/{{guid}}", wrap(deletes.one, "delete_requests"))
    app.router.add_delete(
        f"{root}/interactions/{{guid}}/content/{{key}}", wrap(deletes.content, "delete_requests")
    )


def _message(status: int, text: str) -> tuple[int, object]:
    return status, {"message": text}


class _Deletes:
    def __init__(self, dataset: Dataset, config: DeleteConfig, stats: DeleteStats) -> None:
        self.dataset, self.config, self.stats = dataset, config, stats
        limit = config.per_minute
        self.limiter = None if limit is None else SlidingWindow(limit, config.window)

    async def one(self, request: web.Request, _: object) -> tuple[int, object]:
        """``DELETE /interactions/{guid}``."""
        return await self._serve(lambda: self._remove(request.match_info["guid"]))

    async def content(self, request: web.Request, _: object) -> tuple[int, object]:
        """``DELETE /interactions/{guid}/content/{key}``."""
        guid, key = request.match_info["guid"], request.match_info["key"]
        return await self._serve(lambda: self._remove(guid, key))

    async def batch(self, request: web.Request, _: object) -> tuple[int, object]:
        """``POST /interactions/delete-batch``."""
        try:
            guids = json.loads(await request.read()).get("guids")
        except (ValueError, AttributeError):
            return _message(400, "The body must be a JSON object.")
        if not isinstance(guids, list) or not all(isinstance(g, str) for g in guids):
            return _message(400, "guids must be a list of strings.")
        if not 1 <= len(guids) <= MAX_BATCH:
            return _message(400, f"guids must hold 1 to {MAX_BATCH} guids.")

        def remove_all() -> tuple[int, object]:
            self.stats.batch_sizes.append(len(guids))
            failures = []
            for guid in guids:
                if not _GUID.fullmatch(guid):
                    failures.append({"guid": guid, "message": "Invalid guid.", "statusCode": 400})
                    continue
                status, body = self._remove(guid)
                if status != 204:
                    message = body.get("message", "") if isinstance(body, dict) else ""
                    failures.append({"guid": guid, "message": message, "statusCode": status})
            return 200, {"failures": failures}

        return await self._serve(remove_all)

    async def _serve(self, act: Callable[[], tuple[int, object]]) -> tuple[int, object]:
        """Refuse a deletion that overlaps another or is over the limit, else ``act``."""
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if stats.in_flight > 1:
                stats.concurrent_refused += 1
                return _message(429, "Send deletion requests one at a time.")
            if self.limiter is not None and self.limiter.acquire() is not None:
                stats.rate_limited += 1
                return _message(429, "Deletion rate limit exceeded. Try again later.")
            if self.config.latency > 0:
                await asyncio.sleep(self.config.latency)
            return act()
        finally:
            stats.in_flight -= 1

    def _remove(self, guid: str, key: str | None = None) -> tuple[int, object]:
        """Delete an interaction (or one piece of its content): 204, or 404 if not there."""
        found = remove(self.dataset, guid, key)
        if found is None:
            return _message(404, "Interaction not found.")
        if not found:
            return _message(404, "Content not found.")
        if key is None:
            self.stats.interactions_deleted += 1
        else:
            self.stats.content_deleted += 1
        return 204, None


def remove(dataset: Dataset, guid: str, key: str | None = None) -> bool | None:
    """Delete an interaction (or one piece of its content) from ``dataset``: True when done,
    False when the interaction has no such piece, None when the interaction is not there
    (also how a demo replays the deletions an earlier run recorded)."""
    pos = dataset.position(guid)
    if pos is None or not dataset.has_content(pos):
        return None
    if key is None:
        dataset.hide(pos)
        return True
    keys = [c["contentKey"] for c in dataset.item(pos)["content"]]
    if key not in keys:
        return False
    dataset.removed_keys[pos] = dataset.removed_keys.get(pos, frozenset()) | {key}
    if len(keys) == 1:  # no content left: the API shows only interactions with content
        dataset.hide(pos)
    return True
