"""Retention: plan, verify the archive, delete what verified one at a time, journal every step.

1. The search of the range lists the pieces upstream now (with ``contentLength``).
2. The archive's manifest and the journal are read; every archived file the plan needs is
   hashed again now (:mod:`.verify`, in threads).
3. :func:`.retention.make_plan` decides each piece. Without ``execute`` that is all: nothing
   is written, nothing deleted.
4. With ``execute``: intents left by a killed run whose piece the search no longer lists are
   checked upstream (gone: recorded as such, never sent again). Then each piece to delete
   (or each batch of whole interactions) is re-checked on disk (size and modification time
   unchanged since it was hashed), recorded as an intent in the journal (fsynced), sent, and
   its outcome recorded. Deletions are sent one at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from attrs import define, field

from ..deletes import DeleteFailure, DeleteOutcome
from ..errors import AuthenticationError, NotFoundError, VccError
from ..models import Interaction
from .journal import JOURNAL_NAME, Journal, JournalRecord, JournalState, Outcome, read_records
from .journal import replay as replay_journal
from .manifest import MANIFEST_NAME, Manifest
from .retention import Action, Decision, Piece, Plan, Reason, make_plan, paths_to_verify, pieces_of
from .verify import FileCheck, unchanged, verify_files

__all__ = ["DeletionApi", "PurgeProgress", "purge"]

MAX_FAILURES_KEPT = 100


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
    plan: Plan | None = None
    kept: list[Decision] = field(factory=list)
    failures: list[tuple[Piece, str]] = field(factory=list)

    @property
    def sent(self) -> int:
        """Deletions finished this run (deleted, already gone or failed)."""
        return self.deleted + self.already_gone + self.failed

    @property
    def complete(self) -> bool:
        """Everything in scope is gone upstream: nothing kept, nothing failed."""
        return self.plan is not None and not self.kept and not self.failed


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
) -> PurgeProgress:
    """Plan (and with ``execute``, carry out) the deletion of what ``archive`` holds verified.

    ``parallel`` files are hashed at once. Errors of the search and ``AuthenticationError``
    (a missing delete scope) propagate; a deletion that fails otherwise is counted and listed.
    """
    progress = progress if progress is not None else PurgeProgress()
    manifest = await asyncio.to_thread(Manifest.load, archive / MANIFEST_NAME)
    journal_path = archive / JOURNAL_NAME
    state = replay_journal(await asyncio.to_thread(read_records, journal_path))

    found: dict[tuple[str, str], Piece] = {}
    async for interaction in interactions:
        progress.interactions += 1
        for piece in pieces_of([interaction], types):
            if found.setdefault(piece.key, piece) is piece:
                progress.pieces += 1
                progress.bytes_found += piece.content_length or 0

    progress.phase = "verifying"
    paths = paths_to_verify(found.values(), manifest.entries, state.gone)
    progress.files_to_verify = len(paths)

    def verified(check: FileCheck) -> None:
        progress.files_verified += 1
        progress.bytes_verified += check.size or 0

    checks = await verify_files(archive, paths, parallel=parallel, on_done=verified)
    plan = make_plan(found.values(), manifest.entries, checks, gone=state.gone, whole=whole)
    progress.plan = plan
    progress.kept = plan.of(Action.KEEP)
    progress.to_delete = len(plan.of(Action.DELETE))
    if not execute:
        progress.phase = "planned"
        return progress

    progress.phase = "deleting"
    run = _Run(vcc, archive, Journal(journal_path), progress, checks)
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


class _Run:
    """The deleting half of a purge: every request bracketed by journal records."""

    def __init__(
        self,
        vcc: DeletionApi,
        archive: Path,
        journal: Journal,
        progress: PurgeProgress,
        checks: Mapping[str, FileCheck],
    ) -> None:
        self.vcc, self.archive, self.journal = vcc, archive, journal
        self.progress, self.checks = progress, checks

    async def write(self, *records: JournalRecord) -> None:
        await asyncio.to_thread(self.journal.append, records)

    async def settle_pending(
        self, state: JournalState, found: Mapping[tuple[str, str], Piece]
    ) -> None:
        """Intents without an outcome whose piece the search no longer lists: ask upstream,
        and record the gone ones (a listed piece is planned afresh, and deleting it again is
        harmless)."""
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

    def keep(self, decision: Decision, reason: Reason) -> None:
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
            p.failed += 1
            if len(p.failures) < MAX_FAILURES_KEPT:
                p.failures.append((decision.piece, message or "failed"))

    async def delete_one(self, decision: Decision) -> None:
        if not self.still_verified(decision):
            self.keep(decision, Reason.CHANGED)
            return
        intent = self.intent(decision, "content")
        await self.write(intent)
        piece = decision.piece
        try:
            done = await self.vcc.delete_content(piece.guid, piece.content_key)
        except AuthenticationError:
            raise  # the intent stays pending: the next run settles it
        except VccError as exc:
            await self.write(intent.then(Outcome.FAILED, str(exc)))
            self.settle(decision, Outcome.FAILED, str(exc))
            return
        outcome = Outcome.DELETED if done is DeleteOutcome.DELETED else Outcome.ALREADY_GONE
        await self.write(intent.then(outcome))
        self.settle(decision, outcome)

    async def delete_batch(self, guids: Sequence[str]) -> None:
        plan = self.progress.plan
        assert plan is not None
        wanted = set(guids)
        pieces: dict[str, list[Decision]] = {}
        for d in plan.of(Action.DELETE):
            if d.piece.guid in wanted:
                pieces.setdefault(d.piece.guid, []).append(d)
        for guid, decisions in list(pieces.items()):
            changed = [not self.still_verified(d) for d in decisions]
            if any(changed):
                for d, was_changed in zip(decisions, changed, strict=True):
                    self.keep(d, Reason.CHANGED if was_changed else Reason.PARTNER_KEPT)
                del pieces[guid]
        if not pieces:
            return
        intents = {d: self.intent(d, "interaction") for ds in pieces.values() for d in ds}
        await self.write(*intents.values())
        try:
            failures = await self.vcc.delete_interactions(list(pieces))
        except AuthenticationError:
            raise
        except VccError as exc:
            failed = dict.fromkeys(pieces, str(exc))
        else:
            failed = {
                f.guid: f"{f.message or 'not deleted'} (HTTP {f.status_code})" for f in failures
            }
        outcomes: list[JournalRecord] = []
        for decision, intent in intents.items():
            message = failed.get(decision.piece.guid)
            # a batch does not tell the already gone (404) from the deleted
            outcome = Outcome.DELETED if message is None else Outcome.FAILED
            outcomes.append(intent.then(outcome, message))
            self.settle(decision, outcome, message)
        await self.write(*outcomes)
