"""Retention: plan, verify the archive, delete what verified, each deletion right after its check.

1. The search of the range lists the pieces upstream now (with ``contentLength`` and
   ``lastModified``).
2. The archive's manifest and the journal are read; every archived file the plan needs is
   hashed again now (:mod:`.verify`, in threads).
3. :func:`.retention.make_plan` decides each piece. Without ``execute`` that is all: nothing
   is written, nothing deleted.
4. With ``execute``: intents left by a killed run (or sent with an unknown outcome) whose
   piece the search no longer lists are checked upstream (gone: recorded as such, never sent
   again; not answered: that piece is skipped this run). Then every deletion follows its own
   check (:meth:`_Run.checked`, the one place of that sequence): wait for the deletion budget,
   fetch the interaction (``GET /interactions/{guid}``: the search's answer is never enough),
   decide the piece on that answer and re-check its file on disk (size and modification time
   unchanged since it was hashed), record the intent (fsynced) and send the DELETE at once,
   under a guard that refuses to send it once the check is older than ``max_check_age``
   (then the interaction is fetched again). ``--whole-interactions`` fetches a batch's
   interactions concurrently just before the batch and sends it only while the oldest of
   those answers is younger than the bound; batches are sized so that this holds
   (:func:`.retention.batch_size`), and halved when it did not.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterable, Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, Protocol

from attrs import define, field

from .._config import DEFAULT_RATE
from .._deletes import DeleteFailure, DeleteOutcome, Guard
from .._errors import APIStatusError, AuthenticationError, NotFoundError, VccError
from .._models import Interaction
from ._journal import JOURNAL_NAME, Journal, JournalRecord, JournalState, Outcome, read_records
from ._journal import replay as replay_journal
from ._manifest import MANIFEST_NAME, Manifest, ManifestEntry
from ._retention import (
    MAX_CHECK_AGE,
    Action,
    Check,
    Count,
    Decision,
    Piece,
    PieceKey,
    Plan,
    Reason,
    batch_size,
    decide,
    keep_partners,
    make_plan,
    path_problem,
    paths_to_verify,
    pieces_of,
)
from ._verify import FileCheck, check_file, unchanged, verify_files

__all__ = ["MAX_CHECK_AGE", "DeletionApi", "PurgeProgress", "purge"]

MAX_FAILURES_KEPT = 100
MAX_ROUNDS: Final = 3  # checks of one deletion (of a batch of one) that grew too old, at most


class DeletionApi(Protocol):
    """What a purge needs of the client (``VccClient`` has it)."""

    async def interaction(self, guid: str) -> Interaction: ...
    async def reserve_deletion(self) -> None: ...
    async def delete_content(
        self, guid: str, content_key: str, *, guard: Guard | None = None
    ) -> DeleteOutcome: ...
    async def delete_interactions(
        self, guids: Iterable[str], *, guard: Guard | None = None
    ) -> list[DeleteFailure]: ...


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
    checks: int = 0  # interactions fetched just before a deletion (one per deletion)
    rechecks: int = 0  # of those, fetched again because the previous check grew too old
    max_check_age: float = MAX_CHECK_AGE
    oldest_check: float = 0.0  # the oldest check a sent deletion relied on (seconds)
    batch_sizes: list[int] = field(factory=list)  # batches of whole interactions sent
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
    max_check_age: float = MAX_CHECK_AGE,
    requests_per_minute: float | None = DEFAULT_RATE,
    in_scope: Callable[[ManifestEntry], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PurgeProgress:
    """Plan (and with ``execute``, carry out) the deletion of what ``archive`` holds verified.

    ``parallel`` files are hashed at once. Each deletion is sent at most ``max_check_age``
    seconds of ``clock`` (monotonic) after the answer of its own check; batches of whole
    interactions are sized for that at ``requests_per_minute`` (the client's request budget).
    ``in_scope`` tells which manifest lines the search's range covers (for the plan's count
    of pieces already deleted). Errors of the search and ``AuthenticationError`` (a missing
    delete scope) propagate; a deletion that fails otherwise is counted and listed.
    """
    if max_check_age <= 0:
        raise ValueError("max_check_age must be positive")
    progress = progress if progress is not None else PurgeProgress()
    progress.max_check_age = max_check_age
    manifest = await asyncio.to_thread(Manifest.load, archive / MANIFEST_NAME)
    journal_path = archive / JOURNAL_NAME
    state = replay_journal(await asyncio.to_thread(read_records, journal_path))

    found: dict[PieceKey, Piece] = {}
    async for interaction in interactions:
        progress.interactions += 1
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
    gone = _already_deleted(state, manifest.entries, found, types, in_scope)
    size = batch_size(max_check_age, requests_per_minute)
    plan = make_plan(
        found.values(), manifest.entries, checks, deleted=state.gone, whole=whole, size=size,
        gone=gone,
    )  # fmt: skip
    progress.plan = plan
    progress.kept = plan.of(Action.KEEP)
    progress.to_delete = len(plan.of(Action.DELETE))
    if not execute:
        progress.phase = "planned"
        return progress

    progress.phase = "deleting"
    run = _Run(
        vcc, archive, Journal(journal_path), progress, checks, manifest.entries, state.gone,
        clock, max_check_age, types,
    )  # fmt: skip
    try:
        await run.settle_pending(state, found)
        if whole:
            await run.delete_whole(plan)
        else:
            for decision in plan.of(Action.DELETE):
                await run.delete_one(decision)
    finally:
        run.journal.close()
    progress.phase = "done"
    return progress


def _already_deleted(
    state: JournalState,
    manifest: Mapping[PieceKey, ManifestEntry],
    found: Mapping[PieceKey, Piece],
    types: Collection[str] | None,
    in_scope: Callable[[ManifestEntry], bool] | None,
) -> dict[str, Count]:
    """Pieces and bytes per type that the journal records as gone and the search no longer
    lists, among the archive's pieces of the range."""
    out: dict[str, Count] = {}
    for key, record in state.gone.items():
        entry = manifest.get(key)
        if entry is None or key in found or (types is not None and entry.type not in types):
            continue
        if in_scope is None or in_scope(entry):
            out.setdefault(entry.type, Count()).add(record.bytes)
    return dict(sorted(out.items()))


class _CheckTooOld(Exception):
    """Not sent: the check it was to follow is older than the bound."""


@define
class _Guard:
    """Refuses a send once ``deadline`` (of ``clock``) has passed; counts the sends allowed."""

    clock: Callable[[], float]
    check: float  # when the oldest answer relied on came
    bound: float
    sent: int = 0
    age: float = 0.0  # of the check when the last send left

    def __call__(self) -> None:
        age = self.clock() - self.check
        if age > self.bound:
            raise _CheckTooOld
        self.sent += 1
        self.age = age


def _outcome_of(exc: VccError) -> Outcome:
    """``FAILED`` when the API answered 4xx (it refused: nothing was done); otherwise (a
    timeout, a dropped connection, a 5xx, an unreadable answer) the request may have been
    carried out: ``UNKNOWN``."""
    refused = isinstance(exc, APIStatusError) and 400 <= exc.status < 500
    return Outcome.FAILED if refused else Outcome.UNKNOWN


@define(eq=False)
class _Run:
    """The deleting half of a purge: every deletion decided on its own check, every request
    bracketed by journal records."""

    vcc: DeletionApi
    archive: Path
    journal: Journal
    progress: PurgeProgress
    checks: dict[str, FileCheck]
    manifest: Mapping[PieceKey, ManifestEntry]
    deleted: Collection[PieceKey]  # gone by the journal, before this run
    clock: Callable[[], float]
    max_age: float
    types: Collection[str] | None

    async def write(self, *records: JournalRecord) -> None:
        await asyncio.to_thread(self.journal.append, records)

    async def settle_pending(
        self, state: JournalState, found: Mapping[tuple[str, str], Piece]
    ) -> None:
        """Intents without an outcome (or with an unknown one) whose piece the search no
        longer lists: ask upstream, and record the gone ones (a listed piece is planned
        afresh, and deleting it again is harmless). One that cannot be asked now (after the
        request's retries) is skipped this run, and the others go on."""
        for key, intent in state.pending.items():
            if key in found:
                continue
            try:
                interaction = await self.vcc.interaction(intent.guid)
            except NotFoundError:
                await self.write(intent.then(Outcome.ALREADY_GONE))
                continue
            except AuthenticationError:
                raise
            except VccError as exc:
                entry = self.manifest.get(key)
                kind = entry.type if entry is not None else "unknown"
                piece = Piece(intent.guid, intent.content_key, kind, None)
                self.progress.kept.append(
                    Decision(piece, Action.KEEP, Reason.PENDING_UNSETTLED, entry)
                )
                if len(self.progress.failures) < MAX_FAILURES_KEPT:
                    self.progress.failures.append((piece, f"pending outcome not settled: {exc}"))
                continue
            if all(c.content_key != intent.content_key for c in interaction.content):
                await self.write(intent.then(Outcome.ALREADY_GONE))

    async def fetch(self, guid: str, *, whole: bool = False) -> Check:
        """The check of ``guid``: the pieces the API lists for it now (every type when
        ``whole``), and when the answer came."""
        try:
            interaction = await self.vcc.interaction(guid)
        except NotFoundError:
            pieces = {}
        else:
            kinds = None if whole else self.types
            pieces = {p.key: p for p in pieces_of([interaction], kinds)}
        self.progress.checks += 1
        return Check(guid, pieces, self.clock())

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

    def guard(self, checks: Iterable[Check]) -> _Guard:
        """The guard of a deletion relying on ``checks``: its oldest answer sets the bound."""
        return _Guard(self.clock, min(c.at for c in checks), self.max_age)

    def sent_with(self, guard: _Guard) -> None:
        self.progress.oldest_check = max(self.progress.oldest_check, guard.age)

    async def checked(self, guids: Sequence[str], *, whole: bool) -> list[Check | VccError]:
        """Wait for the deletion budget, then fetch ``guids`` (concurrently, within the
        request budget): the checks the next deletion is decided on, made after every wait
        but the request's own; a fetch that failed is its error."""
        await self.vcc.reserve_deletion()
        answers = await asyncio.gather(
            *(self.fetch(g, whole=whole) for g in guids), return_exceptions=True
        )
        out: list[Check | VccError] = []
        for answer in answers:
            if isinstance(answer, AuthenticationError) or not isinstance(answer, Check | VccError):
                raise answer
            out.append(answer)
        return out

    async def delete_one(self, decision: Decision) -> None:
        """Check, then delete at once: up to :data:`MAX_ROUNDS` checks when the DELETE could
        not leave while its check was young enough."""
        piece = decision.piece
        intent: JournalRecord | None = None  # the last one written, if any
        sent = False  # a DELETE of this piece left (its outcome not known)
        for _ in range(MAX_ROUNDS):
            (check,) = await self.checked([piece.guid], whole=False)
            if isinstance(check, VccError):
                if sent:  # an earlier DELETE left and no answer tells what it did
                    self.settle(decision, Outcome.UNKNOWN, str(check))
                else:
                    self.keep(decision, Reason.NOT_REFETCHED)
                return
            now = check.pieces.get(piece.key)
            if now is None:  # gone upstream (by an earlier send of this run, or not)
                if sent and intent is not None:
                    await self.write(intent.then(Outcome.DELETED))
                self.settle(decision, Outcome.DELETED if sent else Outcome.ALREADY_GONE)
                return
            latest = await self.decide(now)
            if latest.action is not Action.DELETE:
                self.keep(latest)
                return
            if not self.still_verified(latest):
                self.keep(latest, Reason.CHANGED)
                return
            intent = self.intent(latest, "content")
            await self.write(intent)
            guard = self.guard([check])
            try:
                done = await self.vcc.delete_content(piece.guid, piece.content_key, guard=guard)
            except _CheckTooOld:
                sent = sent or guard.sent > 0
                await self.write(intent.then(*_not_sent(guard, self.max_age)))
                self.progress.rechecks += 1
                continue
            except AuthenticationError:
                raise  # the intent stays pending: the next run settles it
            except VccError as exc:
                outcome = _outcome_of(exc)
                await self.write(intent.then(outcome, str(exc)))
                self.settle(latest, outcome, str(exc))
                return
            self.sent_with(guard)
            outcome = Outcome.DELETED if done is DeleteOutcome.DELETED else Outcome.ALREADY_GONE
            await self.write(intent.then(outcome))
            self.settle(latest, outcome)
            return
        if sent:
            self.settle(decision, Outcome.UNKNOWN, f"not checked again within {self.max_age:g} s")
        else:
            self.keep(decision, Reason.CHECK_TOO_OLD)

    async def delete_whole(self, plan: Plan) -> None:
        """Every interaction of ``plan.whole``, a batch at a time, each batch right after its
        checks; a batch whose checks grew too old is halved and checked again."""
        planned: dict[str, list[Decision]] = {}
        for d in plan.of(Action.DELETE):
            planned.setdefault(d.piece.guid, []).append(d)
        queue = deque(plan.whole or ())
        size, stuck = plan.batch_size, 0
        sent: set[str] = set()  # guids sent in a batch whose outcome is not known
        while queue:
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
            if await self.delete_batch(batch, planned, sent):
                stuck = 0
                continue
            self.progress.rechecks += len(batch)
            queue.extendleft(reversed(batch))
            if size > 1:
                size = max(1, size // 2)
                continue
            stuck += 1
            if stuck >= MAX_ROUNDS:  # one interaction that cannot be checked in time
                guid, stuck = queue.popleft(), 0
                for d in planned.get(guid, []):
                    if guid in sent:
                        self.settle(d, Outcome.UNKNOWN, f"not checked within {self.max_age:g} s")
                    else:
                        self.keep(d, Reason.CHECK_TOO_OLD)

    async def whole_now(
        self, check: Check, planned: Sequence[Decision]
    ) -> tuple[list[Decision], list[Decision], list[Decision]]:
        """From the check of one interaction: its pieces to delete (none when one of them is
        kept), those kept, and the planned ones gone upstream since the search."""
        gone = [d for d in planned if d.piece.key not in check.pieces]
        decisions = keep_partners([await self.decide(p, whole=True) for p in check.pieces.values()])
        changed = [d.action is Action.DELETE and not self.still_verified(d) for d in decisions]
        if any(changed):
            decisions = [
                d.kept(Reason.CHANGED if was_changed else Reason.PARTNER_KEPT)
                for d, was_changed in zip(decisions, changed, strict=True)
            ]
        delete = [d for d in decisions if d.action is Action.DELETE]
        return delete, [d for d in decisions if d.action is not Action.DELETE], gone

    async def delete_batch(
        self, guids: Sequence[str], planned: Mapping[str, list[Decision]], sent: set[str]
    ) -> bool:
        """Check ``guids`` concurrently and send them as one batch at once; False (nothing
        counted) when the batch could not leave while its oldest check was young enough."""
        answers = await self.checked(guids, whole=True)
        fates: list[tuple[str, tuple[list[Decision], list[Decision], list[Decision]]]] = []
        unchecked: list[str] = []
        for guid, answer in zip(guids, answers, strict=True):
            if isinstance(answer, VccError):
                unchecked.append(guid)
            else:
                fates.append((guid, await self.whole_now(answer, planned.get(guid, []))))
        pieces = {guid: fate[0] for guid, fate in fates if fate[0]}
        intents = {d: self.intent(d, "interaction") for ds in pieces.values() for d in ds}
        outcomes: dict[str, tuple[Outcome, str | None]] = {}
        guard: _Guard | None = None
        if pieces:
            checks = [a for a in answers if isinstance(a, Check) and a.guid in pieces]
            await self.write(*intents.values())
            guard = self.guard(checks)
            try:
                failures = await self.vcc.delete_interactions(list(pieces), guard=guard)
            except _CheckTooOld:
                if guard.sent:
                    sent.update(pieces)
                await self.write(
                    *(i.then(*_not_sent(guard, self.max_age)) for i in intents.values())
                )
                return False
            except AuthenticationError:
                raise
            except VccError as exc:
                outcomes = dict.fromkeys(pieces, (_outcome_of(exc), str(exc)))
            else:
                self.sent_with(guard)
                self.progress.batch_sizes.append(len(pieces))
                outcomes = {
                    f.guid: (
                        Outcome.FAILED if 400 <= f.status_code < 500 else Outcome.UNKNOWN,
                        f"{f.message or 'not deleted'} (HTTP {f.status_code})",
                    )
                    for f in failures
                }
        for guid in unchecked:
            for d in planned.get(guid, []):
                self.keep(d, Reason.NOT_REFETCHED)
        records: list[JournalRecord] = []
        for guid, (delete, kept, gone) in fates:
            known = {d.piece.key for d in planned.get(guid, [])}
            self.progress.to_delete += sum(d.piece.key not in known for d in (*delete, *kept))
            for d in gone:  # by an earlier send of this run whose outcome was not known, or not
                if guid in sent:
                    records.append(self.intent(d, "interaction").then(Outcome.DELETED))
                self.settle(d, Outcome.DELETED if guid in sent else Outcome.ALREADY_GONE)
            for d in kept:
                self.keep(d)
        for decision, intent in intents.items():
            # a batch does not tell the already gone (404) from the deleted
            outcome, message = outcomes.get(decision.piece.guid, (Outcome.DELETED, None))
            records.append(intent.then(outcome, message))
            self.settle(decision, outcome, message)
        await self.write(*records)
        return True


def _not_sent(guard: _Guard, bound: float) -> tuple[Outcome, str]:
    """The journal's outcome of a deletion the guard stopped: not sent at all (``failed``:
    nothing done), or sent before and retried (``unknown``)."""
    message = f"not sent: its check grew older than {bound:g} s; checked again"
    return (Outcome.UNKNOWN if guard.sent else Outcome.FAILED), message
