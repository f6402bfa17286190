"""Retention: plan, verify the archive, delete what verified one at a time, journal every step.

1. The search of the range lists the pieces upstream now (with ``contentLength`` and
   ``lastModified``).
2. The archive's manifest and the journal are read; every archived file the plan needs is
   hashed again now (:mod:`.verify`, in threads).
3. :func:`.retention.make_plan` decides each piece. Without ``execute`` that is all: nothing
   is written, nothing deleted.
4. With ``execute``: intents left by a killed run (or sent with an unknown outcome) whose
   piece the search no longer lists are checked upstream (gone: recorded as such, never sent
   again). Then each piece to delete is decided again on the interaction as the API shows it
   now (``GET /interactions/{guid}``, once per interaction) when the search's answer is older
   than ``max_search_age``, and always before a batch of whole interactions; re-checked on
   disk (size and modification time unchanged since it was hashed); recorded as an intent in
   the journal (fsynced); sent; and its outcome recorded. Deletions are sent one at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, Protocol

from attrs import define, field

from ..deletes import DeleteFailure, DeleteOutcome
from ..errors import APIStatusError, AuthenticationError, NotFoundError, VccError
from ..models import Interaction
from .journal import JOURNAL_NAME, Journal, JournalRecord, JournalState, Outcome, read_records
from .journal import replay as replay_journal
from .manifest import MANIFEST_NAME, Manifest, ManifestEntry
from .retention import (
    Action,
    Decision,
    Piece,
    PieceKey,
    Plan,
    Reason,
    decide,
    keep_partners,
    make_plan,
    path_problem,
    paths_to_verify,
    pieces_of,
)
from .verify import FileCheck, check_file, unchanged, verify_files

__all__ = ["MAX_SEARCH_AGE", "DeletionApi", "PurgeProgress", "purge"]

MAX_FAILURES_KEPT = 100
MAX_SEARCH_AGE: Final = 300.0  # seconds: an older answer is fetched again before a deletion


class DeletionApi(Protocol):
    """What a purge needs of the client (``VccClient`` has it)."""

    async def interaction(self, guid: str) -> Interaction: ...
    async def delete_content(self, guid: str, content_key: str) -> DeleteOutcome: ...
    async def delete_interactions(self, guids: Iterable[str]) -> list[DeleteFailure]: ...


@define
class PurgeProgress:
    """Counters of a purge, updated as it runs (a display polls them)."""

    phase: str = "searching"
    interactions: int = 0
    pieces: int = 0
    bytes_found: int = 0
    files_to_verify: int = 0
    files_verified: int = 0
    bytes_verified: int = 0
    to_delete: int = 0
    deleted: int = 0
    bytes_deleted: int = 0
    already_gone: int = 0
    failed: int = 0
    unknown: int = 0  # sent, but whether it was carried out is not known (the next run asks)
    refetched: int = 0  # interactions fetched again just before their deletion
    plan: Plan | None = None
    kept: list[Decision] = field(factory=list)
    failures: list[tuple[Piece, str]] = field(factory=list)

    @property
    def sent(self) -> int:
        """Deletions finished this run (deleted, already gone, failed or of unknown outcome)."""
        return self.deleted + self.already_gone + self.failed + self.unknown

    @property
    def complete(self) -> bool:
        """Everything in scope is gone upstream: nothing kept, failed or uncertain."""
        return self.plan is not None and not self.kept and not self.failed and not self.unknown


async def purge(
    vcc: DeletionApi,
    interactions: AsyncIterable[Interaction],
    archive: Path,
    *,
    types: Collection[str] | None = None,
    whole: bool = False,
    execute: bool = False,
    parallel: int = 2,
    progress: PurgeProgress | None = None,
    max_search_age: float = MAX_SEARCH_AGE,
    clock: Callable[[], float] = time.monotonic,
) -> PurgeProgress:
    """Plan (and with ``execute``, carry out) the deletion of what ``archive`` holds verified.

    ``parallel`` files are hashed at once. An interaction whose search answer is older than
    ``max_search_age`` seconds of ``clock`` (monotonic) is fetched again before its pieces are
    deleted. Errors of the search and ``AuthenticationError`` (a missing delete scope)
    propagate; a deletion that fails otherwise is counted and listed.
    """
    progress = progress if progress is not None else PurgeProgress()
    manifest = await asyncio.to_thread(Manifest.load, archive / MANIFEST_NAME)
    journal_path = archive / JOURNAL_NAME
    state = replay_journal(await asyncio.to_thread(read_records, journal_path))

    found: dict[PieceKey, Piece] = {}
    seen: dict[str, float] = {}
    async for interaction in interactions:
        progress.interactions += 1
        seen.setdefault(interaction.guid, clock())
        for piece in pieces_of([interaction], types):
            if found.setdefault(piece.key, piece) is piece:
                progress.pieces += 1
                progress.bytes_found += piece.content_length or 0

    progress.phase = "verifying"
    paths = paths_to_verify(found.values(), manifest.entries)
    progress.files_to_verify = len(paths)

    def verified(check: FileCheck) -> None:
        progress.files_verified += 1
        progress.bytes_verified += check.size or 0

    checks = await verify_files(archive, paths, parallel=parallel, on_done=verified)
    plan = make_plan(found.values(), manifest.entries, checks, deleted=state.gone, whole=whole)
    progress.plan = plan
    progress.kept = plan.of(Action.KEEP)
    progress.to_delete = len(plan.of(Action.DELETE))
    if not execute:
        progress.phase = "planned"
        return progress

    progress.phase = "deleting"
    run = _Run(
        vcc, archive, Journal(journal_path), progress, checks, manifest.entries, state.gone,
        seen, clock, max_search_age, types,
    )  # fmt: skip
    try:
        await run.settle_pending(state, found)
        if whole:
            for batch in plan.batches():
                await run.delete_batch(batch)
        else:
            for decision in plan.of(Action.DELETE):
                await run.delete_one(decision)
    finally:
        run.journal.close()
    progress.phase = "done"
    return progress


def _outcome_of(exc: VccError) -> Outcome:
    """``FAILED`` when the API answered 4xx (it refused: nothing was done); otherwise (a
    timeout, a dropped connection, a 5xx, an unreadable answer) the request may have been
    carried out: ``UNKNOWN``."""
    refused = isinstance(exc, APIStatusError) and 400 <= exc.status < 500
    return Outcome.FAILED if refused else Outcome.UNKNOWN


@define(eq=False)
class _Run:
    """The deleting half of a purge: every piece decided on what the API shows now, every
    request bracketed by journal records."""

    vcc: DeletionApi
    archive: Path
    journal: Journal
    progress: PurgeProgress
    checks: dict[str, FileCheck]
    manifest: Mapping[PieceKey, ManifestEntry]
    deleted: Collection[PieceKey]  # gone by the journal, before this run
    seen: dict[str, float]  # when the API last showed each interaction (clock)
    clock: Callable[[], float]
    max_age: float
    types: Collection[str] | None
    fresh: dict[str, dict[PieceKey, Piece]] = field(factory=dict)  # fetched again

    async def write(self, *records: JournalRecord) -> None:
        await asyncio.to_thread(self.journal.append, records)

    async def settle_pending(
        self, state: JournalState, found: Mapping[tuple[str, str], Piece]
    ) -> None:
        """Intents without an outcome (or with an unknown one) whose piece the search no
        longer lists: ask upstream, and record the gone ones (a listed piece is planned
        afresh, and deleting it again is harmless)."""
        for key, intent in state.pending.items():
            if key in found:
                continue
            try:
                interaction = await self.vcc.interaction(intent.guid)
            except NotFoundError:
                await self.write(intent.then(Outcome.ALREADY_GONE))
                continue
            if all(c.content_key != intent.content_key for c in interaction.content):
                await self.write(intent.then(Outcome.ALREADY_GONE))

    async def refetch(self, guid: str, *, whole: bool = False) -> dict[PieceKey, Piece]:
        """The pieces the API lists for ``guid`` now (one request; every type when
        ``whole``), remembered with the time."""
        try:
            interaction = await self.vcc.interaction(guid)
        except NotFoundError:
            pieces = {}
        else:
            kinds = None if whole else self.types
            pieces = {p.key: p for p in pieces_of([interaction], kinds)}
        self.progress.refetched += 1
        self.seen[guid] = self.clock()
        self.fresh[guid] = pieces
        return pieces

    async def check(self, entry: ManifestEntry | None) -> FileCheck | None:
        """The hash of ``entry``'s file (hashed now if the plan did not need it)."""
        if entry is None or path_problem(entry.path) is not None:
            return None
        if entry.path not in self.checks:
            self.checks[entry.path] = await asyncio.to_thread(check_file, self.archive, entry.path)
        return self.checks[entry.path]

    async def decide(self, piece: Piece, *, whole: bool = False) -> Decision:
        """The fate of ``piece`` as the API shows it now."""
        entry = self.manifest.get(piece.key)
        recreated = whole and piece.key in self.deleted
        return decide(piece, entry, await self.check(entry), recreated=recreated)

    async def latest(self, decision: Decision) -> Decision | None:
        """``decision`` taken again on the interaction fetched anew when the API's answer is
        older than ``max_age``; None when the API no longer lists the piece."""
        guid = decision.piece.guid
        if self.clock() - self.seen.get(guid, float("-inf")) > self.max_age:
            await self.refetch(guid)
        pieces = self.fresh.get(guid)
        if pieces is None:  # the search's answer is recent enough
            return decision
        piece = pieces.get(decision.piece.key)
        return None if piece is None else await self.decide(piece)

    def still_verified(self, decision: Decision) -> bool:
        entry = decision.entry
        check = self.checks.get(entry.path) if entry is not None else None
        return check is not None and unchanged(self.archive, check)

    def intent(self, decision: Decision, scope: str) -> JournalRecord:
        assert decision.entry is not None  # only verified pieces are deleted
        piece = decision.piece
        return JournalRecord(
            guid=piece.guid,
            content_key=piece.content_key,
            sha256=decision.entry.sha256,
            bytes=decision.bytes,
            scope=scope,
            outcome=Outcome.INTENT,
        )

    def keep(self, decision: Decision, reason: Reason | None = None) -> None:
        """Keep a piece that was to be deleted (``reason``: the decision's own by default)."""
        reason = reason or decision.reason
        assert reason is not None  # a kept decision has its reason
        self.progress.to_delete -= 1
        self.progress.kept.append(decision.kept(reason))

    def settle(self, decision: Decision, outcome: Outcome, message: str | None = None) -> None:
        p = self.progress
        if outcome is Outcome.DELETED:
            p.deleted += 1
            p.bytes_deleted += decision.bytes
        elif outcome is Outcome.ALREADY_GONE:
            p.already_gone += 1
        else:
            if outcome is Outcome.UNKNOWN:
                p.unknown += 1
                message = f"outcome unknown, checked again by the next run: {message}"
            else:
                p.failed += 1
            if len(p.failures) < MAX_FAILURES_KEPT:
                p.failures.append((decision.piece, message or "failed"))

    async def delete_one(self, decision: Decision) -> None:
        try:
            latest = await self.latest(decision)
        except AuthenticationError:
            raise
        except VccError:
            self.keep(decision, Reason.NOT_REFETCHED)
            return
        if latest is None:  # gone upstream since the search: nothing to send
            self.settle(decision, Outcome.ALREADY_GONE)
            return
        if latest.action is not Action.DELETE:
            self.keep(latest)
            return
        if not self.still_verified(latest):
            self.keep(latest, Reason.CHANGED)
            return
        intent = self.intent(latest, "content")
        await self.write(intent)
        piece = latest.piece
        try:
            done = await self.vcc.delete_content(piece.guid, piece.content_key)
        except AuthenticationError:
            raise  # the intent stays pending: the next run settles it
        except VccError as exc:
            outcome = _outcome_of(exc)
            await self.write(intent.then(outcome, str(exc)))
            self.settle(latest, outcome, str(exc))
            return
        outcome = Outcome.DELETED if done is DeleteOutcome.DELETED else Outcome.ALREADY_GONE
        await self.write(intent.then(outcome))
        self.settle(latest, outcome)

    async def whole_now(self, guid: str, planned: Sequence[Decision]) -> list[Decision]:
        """The pieces of ``guid`` to delete with it, decided on every piece the API lists for
        it now; none when one of them is kept (or the interaction is gone)."""
        try:
            pieces = await self.refetch(guid, whole=True)
        except AuthenticationError:
            raise
        except VccError:
            for d in planned:
                self.keep(d, Reason.NOT_REFETCHED)
            return []
        for d in planned:
            if d.piece.key not in pieces:  # gone upstream since the search
                self.settle(d, Outcome.ALREADY_GONE)
        known = {d.piece.key for d in planned}
        self.progress.to_delete += sum(key not in known for key in pieces)
        decisions = keep_partners([await self.decide(p, whole=True) for p in pieces.values()])
        changed = [d.action is Action.DELETE and not self.still_verified(d) for d in decisions]
        if any(changed):
            decisions = [
                d.kept(Reason.CHANGED if was_changed else Reason.PARTNER_KEPT)
                for d, was_changed in zip(decisions, changed, strict=True)
            ]
        for d in decisions:
            if d.action is not Action.DELETE:
                self.keep(d)
        return [d for d in decisions if d.action is Action.DELETE]

    async def delete_batch(self, guids: Sequence[str]) -> None:
        plan = self.progress.plan
        assert plan is not None
        planned: dict[str, list[Decision]] = {guid: [] for guid in guids}
        for d in plan.of(Action.DELETE):
            if d.piece.guid in planned:
                planned[d.piece.guid].append(d)
        pieces: dict[str, list[Decision]] = {}
        for guid, decisions in planned.items():
            if now := await self.whole_now(guid, decisions):
                pieces[guid] = now
        if not pieces:
            return
        intents = {d: self.intent(d, "interaction") for ds in pieces.values() for d in ds}
        await self.write(*intents.values())
        try:
            failures = await self.vcc.delete_interactions(list(pieces))
        except AuthenticationError:
            raise
        except VccError as exc:
            failed = dict.fromkeys(pieces, (_outcome_of(exc), str(exc)))
        else:
            failed = {
                f.guid: (
                    Outcome.FAILED if 400 <= f.status_code < 500 else Outcome.UNKNOWN,
                    f"{f.message or 'not deleted'} (HTTP {f.status_code})",
                )
                for f in failures
            }
        outcomes: list[JournalRecord] = []
        for decision, intent in intents.items():
            # a batch does not tell the already gone (404) from the deleted
            outcome, message = failed.get(decision.piece.guid, (Outcome.DELETED, None))
            outcomes.append(intent.then(outcome, message))
            self.settle(decision, outcome, message)
        await self.write(*outcomes)
