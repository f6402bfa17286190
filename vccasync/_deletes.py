"""Deletions: one at a time per client, under their own budget and the delete scope's token.

The API asks for deletion requests to be sent one at a time (concurrent ones draw 429s); the
vendor's sample throttles them to about 16 a minute and batches 1000 guids per
``delete-batch``. A :class:`Deleter` holds a lock (one deletion in flight), its own budget
(``ClientConfig.deletes_per_minute``), waited for before the client's shared one, and sends
through the session's one request core (same retries, same 429 pause). A 404 means already
gone, which is what a deletion wants; a 403 means the token lacks the delete scope.

A caller that checks something upstream before deleting (a purge) waits for the budget first
(:meth:`Deleter.reserve`: the slot is kept for its next deletion), then checks, then deletes
with a ``guard``: called just before each send (after every wait, retries included), it
refuses a send whose check has grown too old by raising.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import StrEnum
from typing import Any, Final

from attrs import frozen

from ._config import ClientConfig
from ._errors import (
    InvalidRequestError,
    InvalidTypeError,
    NotFoundError,
    PermissionDeniedError,
    ResponseValidationError,
)
from ._http.ratelimit import RateLimiter
from ._http.session import Session, path_segment
from ._jsonio import loads
from ._tracing import traced_batch_deletion, traced_deletion

__all__ = [
    "MAX_BATCH",
    "DeleteFailure",
    "DeleteOutcome",
    "Deleter",
    "Guard",
    "batches",
    "check_guids",
    "parse_failures",
]

MAX_BATCH: Final = 1000

Guard = Callable[[], None]  # called just before a deletion is sent; raises to refuse it


class DeleteOutcome(StrEnum):
    """What one deletion did: removed it, or found it already gone (404)."""

    DELETED = "deleted"
    ALREADY_GONE = "already-gone"


@frozen
class DeleteFailure:
    """One guid of a ``delete-batch`` that the API did not delete, and why."""

    guid: str
    message: str
    status_code: int


def batches(guids: Sequence[str], size: int = MAX_BATCH) -> Iterator[list[str]]:
    """``guids`` in consecutive lists of at most ``size``."""
    for start in range(0, len(guids), size):
        yield list(guids[start : start + size])


def parse_failures(body: Any) -> list[DeleteFailure]:
    """The failures of a ``delete-batch`` answer, except 404s (already gone counts as done)."""
    failures = body.get("failures") if isinstance(body, dict) else None
    if not isinstance(failures, list):
        raise ResponseValidationError("the delete-batch answer has no list of failures")
    out = []
    for failure in failures:
        if not isinstance(failure, dict):
            raise ResponseValidationError(f"a delete-batch failure is not an object: {failure!r}")
        guid, status = failure.get("guid"), failure.get("statusCode")
        if not isinstance(guid, str) or isinstance(status, bool) or not isinstance(status, int):
            raise ResponseValidationError(f"a delete-batch failure lacks a field: {failure}")
        if status != 404:
            out.append(DeleteFailure(guid, str(failure.get("message") or ""), status))
    return out


def _guid(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidTypeError(f"a guid must be a string, got {value!r}")
    if not value.strip():
        raise InvalidRequestError("a guid must not be empty")
    return value


def check_guids(guids: Iterable[str]) -> list[str]:
    """``guids`` validated, duplicates dropped (first occurrence kept)."""
    if isinstance(guids, str | bytes) or not isinstance(guids, Iterable):
        raise InvalidTypeError("guids must be a collection of guid strings, not one string")
    return list(dict.fromkeys(_guid(g) for g in guids))


class Deleter:
    """Sends the deletions of one client, one at a time, within their own budget."""

    def __init__(self, session: Session, config: ClientConfig) -> None:
        self._session = session
        self._config = config
        self._lock = asyncio.Lock()
        self.budget = RateLimiter(config.deletes_per_minute)
        self._reserved = False  # a slot of the budget already waited for

    def __repr__(self) -> str:
        return f"Deleter(per_minute={self.budget.per_minute!r})"

    async def reserve(self) -> None:
        """Wait for the next slot of the deletion budget and keep it for the next deletion
        (so that a check made after this wait is not aged by it)."""
        if not self._reserved:
            await self.budget.acquire()
            self._reserved = True

    async def acquire(self) -> None:
        """The budget as the session waits for it: a reserved slot first."""
        if self._reserved:
            self._reserved = False
            return
        await self.budget.acquire()

    @traced_deletion
    async def interaction(self, guid: str, *, guard: Guard | None = None) -> DeleteOutcome:
        """``DELETE /interactions/{guid}``."""
        return await self._delete(f"/interactions/{path_segment(_guid(guid))}", guard)

    @traced_deletion
    async def content(
        self, guid: str, content_key: str, *, guard: Guard | None = None
    ) -> DeleteOutcome:
        """``DELETE /interactions/{guid}/content/{content_key}``."""
        if not isinstance(content_key, str) or not content_key:
            raise InvalidRequestError("content_key must be a non-empty string")
        path = f"/interactions/{path_segment(_guid(guid))}/content/{path_segment(content_key)}"
        return await self._delete(path, guard)

    @traced_batch_deletion
    async def interactions(
        self, guids: Iterable[str], *, guard: Guard | None = None
    ) -> list[DeleteFailure]:
        """``POST /interactions/delete-batch`` for every ``MAX_BATCH`` guids; the failures."""
        failures: list[DeleteFailure] = []
        for chunk in batches(check_guids(guids)):
            body = await self._send("POST", "/interactions/delete-batch", {"guids": chunk}, guard)
            failures.extend(parse_failures(body))
        return failures

    async def _delete(self, path: str, guard: Guard | None) -> DeleteOutcome:
        try:
            await self._send("DELETE", path, None, guard)
        except NotFoundError:
            return DeleteOutcome.ALREADY_GONE
        return DeleteOutcome.DELETED

    async def _send(self, method: str, path: str, json: Any, guard: Guard | None) -> Any:
        scope = self._config.delete_scope
        async with self._lock:
            try:
                return await self._session.request(
                    method, path, json=json, parse=_json_or_none, scope=scope, budget=self,
                    guard=guard,
                )  # fmt: skip
            except PermissionDeniedError as exc:
                raise PermissionDeniedError(
                    f"the API refused a deletion (HTTP 403): client id"
                    f" {self._config.client_id!r} needs the {scope!r} scope",
                    status=exc.status,
                    url=exc.url,
                    detail=exc.detail,
                ) from None


def _json_or_none(body: bytes) -> Any:
    """An empty body (204) as None, else its JSON."""
    return loads(body) if body.strip() else None
