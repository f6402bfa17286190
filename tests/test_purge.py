"""The purge engine against an in-process stand-in of the API: what is sent, what is journaled,
a run stopped between sending and recording, whole interactions in batches."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from vccasync._deletes import DeleteFailure, DeleteOutcome, Guard
from vccasync._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    VccError,
)
from vccasync._instants import format_instant
from vccasync._models import Content, Interaction
from vccasync.cli._purge import print_plan
from vccasync.content._journal import (
    JOURNAL_NAME,
    Journal,
    JournalRecord,
    Outcome,
    read_records,
    replay,
)
from vccasync.content._manifest import MANIFEST_NAME, Manifest, ManifestEntry
from vccasync.content._purge import PurgeProgress, purge
from vccasync.content._retention import Reason

START = datetime(2025, 1, 6, tzinfo=UTC)
MODIFIED = datetime(2025, 1, 6, 0, 5, tzinfo=UTC)


class Api:
    """Interactions upstream; deletions recorded, one at a time or refused with 429."""

    def __init__(self, interactions: list[Interaction]) -> None:
        self.upstream = {i.guid: i for i in interactions}
        self.sent: list[tuple[str, ...]] = []
        self.in_flight = 0
        self.overlapped = False
        self.gate: asyncio.Event | None = None  # when set: hold each deletion after it is done
        self.held = asyncio.Event()
        self.refuse: dict[str, DeleteFailure] = {}
        self.auth_error = False
        self.gets: list[str] = []  # GET /interactions/{guid}
        self.error_after: VccError | None = None  # raised once a deletion is carried out
        self.error_before: VccError | None = None  # raised instead of carrying it out
        self.on_get: Callable[[str], None] | None = None  # runs as a GET is answered
        self.before_send: Callable[[], None] | None = None  # runs as a deletion waits
        self.retried: Callable[[], None] | None = None  # after a deletion: a 5xx, a retry
        self.reserved = 0  # slots of the deletion budget waited for
        self.refused = 0  # deletions the guard stopped before they were sent

    async def search(self) -> AsyncIterator[Interaction]:
        for interaction in list(self.upstream.values()):
            await asyncio.sleep(0)
            yield interaction

    async def interaction(self, guid: str) -> Interaction:
        self.gets.append(guid)
        if self.on_get is not None:
            self.on_get(guid)
        if guid not in self.upstream:
            raise NotFoundError("not found", status=404)
        return self.upstream[guid]

    async def reserve_deletion(self) -> None:
        self.reserved += 1

    def _leave(self, guard: Guard | None) -> None:
        """The deletion's waits, then its guard, as the request core calls it."""
        if self.before_send is not None:
            self.before_send()
        if guard is not None:
            try:
                guard()
            except Exception:
                self.refused += 1
                raise

    async def _deleting(self) -> None:
        self.overlapped |= self.in_flight > 0
        self.in_flight += 1
        await asyncio.sleep(0)

    async def _done(self) -> None:
        if self.gate is not None:
            self.held.set()
            await self.gate.wait()
        self.in_flight -= 1
        error, self.error_after = self.error_after, None
        if error is not None:
            raise error

    def revise(self, guid: str, key: str, *, length: int | None = None) -> None:
        """Reprocess a piece upstream: a later lastModified (and ``length`` if given)."""
        it = self.upstream[guid]
        content = tuple(
            attrs.evolve(
                c,
                last_modified=c.last_modified + timedelta(seconds=1),
                content_length=c.content_length if length is None else length,
            )
            if c.content_key == key and c.last_modified is not None
            else c
            for c in it.content
        )
        self.upstream[guid] = Interaction(guid, it.start, content=content)

    async def delete_content(
        self, guid: str, content_key: str, *, guard: Guard | None = None
    ) -> DeleteOutcome:
        self._leave(guard)
        if self.auth_error:
            raise AuthenticationError("the token lacks the interaction-content:delete scope")
        if self.error_before is not None:
            raise self.error_before
        await self._deleting()
        self.sent.append((guid, content_key))
        it = self.upstream.get(guid)
        present = it is not None and any(c.content_key == content_key for c in it.content)
        if it is not None and present:
            rest = tuple(c for c in it.content if c.content_key != content_key)
            self.upstream[guid] = Interaction(guid, it.start, content=rest)
            if not rest:
                del self.upstream[guid]
        await self._done()
        if self.retried is not None and guard is not None:  # its answer lost, sent again
            retried, self.retried = self.retried, None
            retried()
            self._leave(guard)
        return DeleteOutcome.DELETED if present else DeleteOutcome.ALREADY_GONE

    async def delete_interactions(
        self, guids: Iterable[str], *, guard: Guard | None = None
    ) -> list[DeleteFailure]:
        self._leave(guard)
        guids = list(guids)
        if self.error_before is not None:
            raise self.error_before
        await self._deleting()
        self.sent.append(tuple(guids))
        failures = []
        for guid in guids:
            if guid in self.refuse:
                failures.append(self.refuse[guid])
            else:  # already gone (404): not a failure
                self.upstream.pop(guid, None)
        await self._done()
        return failures


def archive_of(root: Path, interactions: list[Interaction], *, versions: bool = True) -> None:
    """What 'vccasync content' leaves: files and manifest lines (contents of contentLength),
    with the version archived (or without, as lines written before versions were recorded)."""
    manifest = Manifest(root / MANIFEST_NAME)
    for it in interactions:
        for c in it.content:
            data = (it.guid + c.content_key).encode() * 4
            assert len(data) == c.content_length
            rel = f"{it.guid}/{c.content_key}.bin"
            (root / it.guid).mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
            manifest.add(
                ManifestEntry(
                    guid=it.guid, content_key=c.content_key, type=str(c.type), content_type=None,
                    start="2025-01-06T00:00:00.000Z", path=rel, bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    last_modified=format_instant(c.last_modified) if versions else None,
                    content_length=c.content_length if versions else None,
                )
            )  # fmt: skip
    manifest.close()


def dataset(n: int = 4) -> list[Interaction]:
    out = []
    for i in range(n):
        guid = f"g{i}"
        content = tuple(
            Content(key, kind, content_length=len(guid + key) * 4, last_modified=MODIFIED)
            for key, kind in (("rec", "callRecording"), ("txt", "transcript"))
        )
        out.append(Interaction(guid, START, content=content))
    return out


async def run(api: Api, root: Path, **options: Any) -> PurgeProgress:
    return await purge(api, api.search(), root, **options)


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def kept_of(progress: PurgeProgress) -> dict[tuple[str, str], Reason | None]:
    return {d.piece.key: d.reason for d in progress.kept}


async def test_plan_only_sends_nothing_and_writes_nothing(tmp_path: Path) -> None:
    data = dataset()
    archive_of(tmp_path, data)
    (tmp_path / "g1" / "rec.bin").write_bytes(b"x" * 16)  # same size, other bytes
    (tmp_path / "g2" / "txt.bin").unlink()
    api = Api(data)
    progress = await run(api, tmp_path)
    assert api.sent == [] and not (tmp_path / JOURNAL_NAME).exists()
    kept = {(d.piece.guid, d.piece.content_key): d.reason for d in progress.kept}
    assert kept == {("g1", "rec"): Reason.DIFFERS, ("g2", "txt"): Reason.MISSING}
    assert progress.to_delete == 6 and progress.files_verified == 8


async def test_deletes_exactly_the_verified_pieces_one_at_a_time(tmp_path: Path) -> None:
    data = dataset()
    archive_of(tmp_path, data)
    (tmp_path / "g1" / "rec.bin").write_bytes(b"x" * 16)
    (tmp_path / "g2" / "txt.bin").unlink()
    extra = Interaction("g9", START, content=(Content("new", "voicemail", content_length=5),))
    api = Api([*data, extra])
    progress = await run(api, tmp_path, execute=True)
    kept = {("g1", "rec"), ("g2", "txt"), ("g9", "new")}
    everything = {(i.guid, c.content_key) for i in [*data, extra] for c in i.content}
    assert set(api.sent) == everything - kept and len(api.sent) == len(set(api.sent))
    assert not api.overlapped
    assert (progress.deleted, progress.failed, progress.complete) == (6, 0, False)
    remaining = {(i.guid, c.content_key) for i in api.upstream.values() for c in i.content}
    assert remaining == kept
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert set(state.gone) == everything - kept and not state.pending

    api.sent.clear()
    again = await run(api, tmp_path, execute=True)
    assert api.sent == [] and again.deleted == 0 and len(again.kept) == 3


async def test_a_run_stopped_between_sending_and_recording_loses_nothing(tmp_path: Path) -> None:
    data = dataset()
    archive_of(tmp_path, data)
    api = Api(data)
    api.gate = asyncio.Event()
    task = asyncio.create_task(run(api, tmp_path, execute=True))
    await api.held.wait()  # the first deletion is done upstream, its outcome not yet recorded
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    guid, key = first = api.sent[0]
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert set(state.pending) == {first} and not state.gone

    api.gate, api.in_flight = None, 0
    done = await run(api, tmp_path, execute=True)
    assert api.sent.count(first) == 1  # gone upstream: settled from the API, not sent again
    assert done.complete and done.deleted == 7 and not api.upstream
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert state.gone[guid, key].outcome is Outcome.ALREADY_GONE and not state.pending


async def test_a_pending_piece_still_listed_is_sent_again_harmlessly(tmp_path: Path) -> None:
    data = dataset(1)
    archive_of(tmp_path, data)
    api = Api(data)
    await run(api, tmp_path, execute=True)
    records = read_records(tmp_path / JOURNAL_NAME)
    # as if killed after the first intent, with a search that still lists the piece
    (tmp_path / JOURNAL_NAME).write_bytes(b"")
    journal = Journal(tmp_path / JOURNAL_NAME)
    journal.append(records[:1])
    journal.close()
    api.upstream = {i.guid: i for i in data}
    api.sent.clear()
    await run(api, tmp_path, execute=True)
    assert api.sent == [("g0", "rec"), ("g0", "txt")]


async def test_a_file_changed_after_hashing_is_kept(tmp_path: Path) -> None:
    data = dataset(2)
    archive_of(tmp_path, data)
    api = Api(data)
    api.gate = asyncio.Event()
    task = asyncio.create_task(run(api, tmp_path, execute=True))
    await api.held.wait()
    changed = tmp_path / "g1" / "rec.bin"
    os.utime(changed, ns=(0, 0))
    api.gate.set()
    progress = await task
    assert [(d.piece.key, d.reason) for d in progress.kept] == [(("g1", "rec"), Reason.CHANGED)]
    assert ("g1", "rec") not in api.sent and progress.deleted == 3


async def test_whole_interactions_in_batches(tmp_path: Path) -> None:
    data = dataset(5)
    archive_of(tmp_path, data)
    (tmp_path / "g0" / "txt.bin").unlink()
    api = Api(data)
    del api.upstream["g3"]  # listed by the search below, but already gone when deleted
    api.refuse["g4"] = DeleteFailure("g4", "locked", 409)
    progress = await purge(
        api,
        Api(data).search(),
        tmp_path,
        whole=True,
        execute=True,
    )
    # each interaction fetched again just before the batch: g3 is seen gone, not sent
    assert api.gets == ["g1", "g2", "g3", "g4"]
    assert api.sent == [("g1", "g2", "g4")]
    assert (progress.deleted, progress.already_gone, progress.failed) == (4, 2, 2)
    assert {d.piece.key: d.reason for d in progress.kept} == {
        ("g0", "txt"): Reason.MISSING,
        ("g0", "rec"): Reason.PARTNER_KEPT,
    }
    assert {p.guid for p, _ in progress.failures} == {"g4"}
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert {r.scope for r in state.gone.values()} == {"interaction"}
    assert set(state.failed) == {("g4", "rec"), ("g4", "txt")}


async def test_a_refused_delete_scope_stops_the_run(tmp_path: Path) -> None:
    data = dataset(2)
    archive_of(tmp_path, data)
    api = Api(data)
    api.auth_error = True
    with pytest.raises(AuthenticationError):
        await run(api, tmp_path, execute=True)
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert len(state.pending) == 1 and not state.gone


@pytest.mark.parametrize("length", [None, 99], ids=["same-length", "new-length"])
async def test_a_piece_reprocessed_right_after_the_search_is_kept(
    tmp_path: Path, length: int | None
) -> None:
    data = dataset(2)
    archive_of(tmp_path, data)
    api, clock = Api(data), Clock()

    async def search() -> AsyncIterator[Interaction]:
        async for interaction in api.search():
            yield interaction
        api.revise("g1", "rec", length=length)  # reprocessed upstream a moment after listing

    progress = await purge(api, search(), tmp_path, execute=True, clock=clock)
    reason = Reason.OLDER_VERSION if length is None else Reason.SIZE_DIFFERS
    assert kept_of(progress) == {("g1", "rec"): reason}
    assert ("g1", "rec") not in api.sent and progress.deleted == 3
    assert not progress.complete


async def test_every_deletion_follows_its_own_check(tmp_path: Path) -> None:
    data = dataset(2)
    archive_of(tmp_path, data)
    api, clock = Api(data), Clock()
    order: list[tuple[str, ...]] = []
    api.on_get = lambda guid: order.append(("GET", guid))
    api.before_send = lambda: order.append(("DELETE",))
    progress = await purge(api, api.search(), tmp_path, execute=True, clock=clock)
    assert progress.deleted == 4 and progress.complete
    # one GET per deletion, the last request before it: no answer shared by two deletions
    assert order == [("GET", "g0"), ("DELETE",)] * 2 + [("GET", "g1"), ("DELETE",)] * 2
    assert api.reserved == 4 and progress.checks == 4  # the budget waited for before each GET


async def test_a_deletion_whose_check_grew_too_old_is_checked_again(tmp_path: Path) -> None:
    data = dataset(1)
    archive_of(tmp_path, data)
    api, clock = Api(data), Clock()
    waits = iter([11.0])  # the first DELETE waits 11 s (a 429 pause, say) after its check

    def wait() -> None:
        if seconds := next(waits, 0.0):
            api.revise("g0", "rec")  # reprocessed meanwhile, at the same length
            clock.now += seconds

    api.before_send = wait
    progress = await purge(api, api.search(), tmp_path, execute=True, clock=clock)
    assert api.refused == 1  # not sent: its check was 11 s old
    assert kept_of(progress) == {("g0", "rec"): Reason.OLDER_VERSION}
    assert api.sent == [("g0", "txt")] and progress.rechecks == 1
    assert progress.oldest_check <= 10.0
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert state.failed[("g0", "rec")].outcome is Outcome.FAILED  # journaled: nothing sent


async def test_a_deletion_retried_too_late_is_settled_by_a_new_check(tmp_path: Path) -> None:
    data = dataset(1)
    archive_of(tmp_path, data)
    api, clock = Api(data), Clock()

    def backoff() -> None:  # the first DELETE's answer is lost; its retry waits 11 s
        clock.now += 11

    api.retried = backoff
    progress = await purge(api, api.search(), tmp_path, execute=True, clock=clock)
    assert api.refused == 1 and api.sent == [("g0", "rec"), ("g0", "txt")]
    assert progress.complete and progress.deleted == 2  # the new check shows it gone
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert state.gone[("g0", "rec")].outcome is Outcome.DELETED and not state.pending


async def test_the_bound_is_max_check_age(tmp_path: Path) -> None:
    data = dataset(1)
    archive_of(tmp_path, data)
    api, clock = Api(data), Clock()

    def wait() -> None:
        clock.now += 4.0  # every DELETE leaves 4 s after its check

    api.before_send = wait
    strict = await purge(api, api.search(), tmp_path, execute=True, clock=clock, max_check_age=3)
    assert api.sent == [] and {r for r in kept_of(strict).values()} == {Reason.CHECK_TOO_OLD}
    assert api.refused == 2 * 3  # three checks of each piece, none followed in time
    done = await purge(api, api.search(), tmp_path, execute=True, clock=clock, max_check_age=5)
    assert done.complete and done.deleted == 2 and done.oldest_check == 4.0


async def test_an_interaction_reprocessed_after_its_check_and_before_its_batch_is_kept(
    tmp_path: Path,
) -> None:
    data = dataset(3)
    archive_of(tmp_path, data)
    api, clock = Api(data), Clock()
    first = [True]

    def answered(guid: str) -> None:
        if guid == "g1" and first and first.pop():  # g0 answered; before the batch leaves:
            api.revise("g0", "rec")  # g0 is reprocessed at the same length
            clock.now += 11  # and the batch is held 11 s (g1 slow, a 429 pause)

    api.on_get = answered
    progress = await purge(api, api.search(), tmp_path, whole=True, execute=True, clock=clock)
    assert kept_of(progress) == {
        ("g0", "rec"): Reason.OLDER_VERSION,
        ("g0", "txt"): Reason.PARTNER_KEPT,
    }
    assert "g0" not in {g for batch in api.sent for g in batch}
    assert api.refused == 1 and progress.deleted == 4 and not progress.complete
    assert progress.oldest_check <= 10.0


async def test_whole_batches_are_sized_by_the_bound(tmp_path: Path) -> None:
    data = dataset(9)
    archive_of(tmp_path, data)
    api = Api(data)
    # 60 requests a minute fetch 5 interactions in half of 10 s: batches of 5, then 4
    progress = await run(api, tmp_path, whole=True, execute=True, requests_per_minute=60)
    assert [len(b) for b in api.sent] == [5, 4] and progress.batch_sizes == [5, 4]
    assert progress.plan is not None and progress.plan.batch_size == 5
    assert api.gets == [f"g{i}" for i in range(9)] and api.reserved == 2
    out = io.StringIO()
    print_plan(progress.plan, out)
    assert "9 whole interactions in 2 batches of up to 5" in out.getvalue()


async def test_whole_interactions_are_decided_on_what_the_api_lists_at_that_moment(
    tmp_path: Path,
) -> None:
    data = dataset(3)
    archive_of(tmp_path, data)
    api = Api(data)
    api.revise("g0", "rec")  # after the search below: same length, later lastModified
    g1 = api.upstream["g1"]
    extra = Content("new", "voicemail", content_length=5, last_modified=MODIFIED)
    api.upstream["g1"] = Interaction("g1", START, content=(*g1.content, extra))
    progress = await purge(api, Api(data).search(), tmp_path, whole=True, execute=True)
    assert api.gets == ["g0", "g1", "g2"]
    assert api.sent == [("g2",)]
    assert kept_of(progress) == {
        ("g0", "rec"): Reason.OLDER_VERSION,
        ("g0", "txt"): Reason.PARTNER_KEPT,
        ("g1", "new"): Reason.NOT_IN_ARCHIVE,
        ("g1", "rec"): Reason.PARTNER_KEPT,
        ("g1", "txt"): Reason.PARTNER_KEPT,
    }
    assert (progress.deleted, progress.to_delete, progress.complete) == (2, 2, False)


def journal_deleted(root: Path, key: tuple[str, str]) -> None:
    """A journal recording ``key`` deleted by an earlier run."""
    record = JournalRecord(
        guid=key[0], content_key=key[1], sha256="0" * 64, bytes=1, outcome=Outcome.INTENT
    )
    journal = Journal(root / JOURNAL_NAME)
    journal.append([record, record.then(Outcome.DELETED)])
    journal.close()


async def test_a_piece_deleted_before_but_listed_again_blocks_its_whole_interaction(
    tmp_path: Path,
) -> None:
    data = dataset(2)
    archive_of(tmp_path, data)
    journal_deleted(tmp_path, ("g0", "rec"))
    api = Api(data)
    progress = await run(api, tmp_path, whole=True, execute=True)
    assert api.sent == [("g1",)]
    assert kept_of(progress) == {
        ("g0", "rec"): Reason.RECREATED,
        ("g0", "txt"): Reason.PARTNER_KEPT,
    }
    assert not progress.complete


async def test_a_piece_deleted_before_but_listed_again_is_deleted_again(tmp_path: Path) -> None:
    data = dataset(1)
    archive_of(tmp_path, data)
    journal_deleted(tmp_path, ("g0", "rec"))
    api = Api(data)
    progress = await run(api, tmp_path, execute=True)
    assert sorted(api.sent) == [("g0", "rec"), ("g0", "txt")]
    assert progress.deleted == 2 and progress.complete and not api.upstream
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert set(state.gone) == {("g0", "rec"), ("g0", "txt")} and not state.pending


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (APIConnectionError("request to ... failed: timed out"), "unknown"),
        (APIConnectionError("ServerDisconnectedError"), "unknown"),
        (APIStatusError("HTTP 503", status=503), "unknown"),
        (APIStatusError("HTTP 409", status=409), "failed"),
    ],
    ids=["timeout", "dropped", "5xx", "4xx"],
)
@pytest.mark.parametrize("whole", [False, True], ids=["content", "batch"])
async def test_an_uncertain_outcome_is_recorded_unknown_and_settled_by_the_next_run(
    tmp_path: Path, error: VccError, outcome: str, whole: bool
) -> None:
    data = dataset(1)
    archive_of(tmp_path, data)
    api = Api(data)
    if outcome == "unknown":
        api.error_after = error  # carried out upstream, but the answer is lost
    else:
        api.error_before = error  # refused
    progress = await run(api, tmp_path, whole=whole, execute=True)
    first = ("g0", "rec")
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    if outcome == "failed":
        assert progress.failed == 2 and progress.unknown == 0  # every deletion refused
        assert first in state.failed and state.failed[first].outcome is Outcome.FAILED
        return
    assert progress.unknown == (2 if whole else 1) and progress.failed == 0
    assert not progress.complete
    assert state.pending[first].outcome == "unknown" and not state.failed

    api.sent.clear()
    api.gets.clear()
    again = await run(api, tmp_path, whole=whole, execute=True)
    assert again.complete and api.sent == [] and not api.upstream
    assert "g0" in api.gets  # asked upstream, as an intent without an outcome
    state = replay(read_records(tmp_path / JOURNAL_NAME))
    assert state.gone[first].outcome is Outcome.ALREADY_GONE and not state.pending


async def test_manifest_paths_outside_the_archive_are_not_in_archive(tmp_path: Path) -> None:
    root, outside = tmp_path / "archive", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    data = dataset(4)
    archive_of(root, data)
    lines = (root / MANIFEST_NAME).read_text().splitlines()
    for g in ("g0", "g1", "g2"):  # the same bytes, outside the archive
        (outside / f"{g}.bin").write_bytes((root / g / "rec.bin").read_bytes())
    edited = []
    for line in lines:
        entry = ManifestEntry.from_json(json.loads(line))
        path = {
            ("g0", "rec"): str(outside / "g0.bin"),
            ("g1", "rec"): "../outside/g1.bin",
        }.get((entry.guid, entry.content_key), entry.path)
        edited.append(json.dumps(attrs.evolve(entry, path=path).to_json()))
    (root / MANIFEST_NAME).write_text("\n".join(edited) + "\n")
    (root / "g2" / "rec.bin").unlink()
    (root / "g2" / "rec.bin").symlink_to(outside / "g2.bin")
    api = Api(data)

    plan = await run(api, root)
    assert kept_of(plan) == {
        ("g0", "rec"): Reason.ABSOLUTE_PATH,
        ("g1", "rec"): Reason.PARENT_PATH,
        ("g2", "rec"): Reason.OUTSIDE,
    }
    assert plan.plan is not None
    out = io.StringIO()
    print_plan(plan.plan, out)
    text = out.getvalue()
    assert "1 kept (20 B): not in archive: its manifest path is absolute" in text
    assert "1 kept (20 B): not in archive: its manifest path contains '..'" in text
    assert "not in archive: its manifest path resolves outside the archive" in text

    done = await run(api, root, execute=True)
    assert not {("g0", "rec"), ("g1", "rec"), ("g2", "rec")} & set(api.sent)
    assert done.deleted == 5 and not done.complete


async def test_lines_without_a_version_are_never_trusted(tmp_path: Path) -> None:
    data = dataset(2)
    archive_of(tmp_path, data, versions=False)  # as written before versions were recorded
    later = int((MODIFIED + timedelta(days=1)).timestamp() * 1e9)
    for it in data:  # a copy, a restore or a touch: any mtime at all
        for key in ("rec", "txt"):
            os.utime(tmp_path / it.guid / f"{key}.bin", ns=(later, later))
    api = Api(data)
    progress = await run(api, tmp_path, execute=True)
    assert set(kept_of(progress).values()) == {Reason.VERSION_UNKNOWN} and api.sent == []
    out = io.StringIO()
    assert progress.plan is not None
    print_plan(progress.plan, out)
    assert "rerun 'vccasync content'" in out.getvalue()


async def test_a_line_whose_validators_disagree_is_kept(tmp_path: Path) -> None:
    data = dataset(1)
    archive_of(tmp_path, data)
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    stamped = []
    dates = ["Mon, 06 Jan 2025 00:04:00 GMT", "Mon, 06 Jan 2025 00:05:00 GMT"]
    for line, date in zip(lines, dates, strict=True):
        entry = ManifestEntry.from_json(json.loads(line))  # rec: bytes of another version
        stamped.append(json.dumps(attrs.evolve(entry, http_last_modified=date).to_json()))
    (tmp_path / MANIFEST_NAME).write_text("\n".join(stamped) + "\n")
    api = Api(data)
    progress = await run(api, tmp_path, execute=True)
    assert kept_of(progress) == {("g0", "rec"): Reason.VALIDATORS_DIFFER}
    assert api.sent == [("g0", "txt")]


async def test_a_pending_intent_that_cannot_be_settled_skips_only_its_piece(
    tmp_path: Path,
) -> None:
    data = dataset(3)
    archive_of(tmp_path, data)
    api = Api(data)
    await run(api, tmp_path, execute=True)  # everything deleted, then: as if killed mid-way
    journal_path = tmp_path / JOURNAL_NAME
    intent = read_records(journal_path)[0]
    assert intent.outcome is Outcome.INTENT and intent.key == ("g0", "rec")
    journal_path.write_bytes(b"")
    journal = Journal(journal_path)
    journal.append([intent])
    journal.close()
    api.upstream = {i.guid: i for i in data[1:]}  # g0 is no longer listed: asked upstream
    api.sent.clear()

    def unanswered(guid: str) -> None:
        if guid == "g0":  # a timeout or a 5xx, after the request's own retries
            raise APIStatusError("HTTP 503", status=503)

    api.on_get = unanswered
    progress = await run(api, tmp_path, execute=True)
    assert kept_of(progress) == {("g0", "rec"): Reason.PENDING_UNSETTLED}
    assert len(api.sent) == 4 and progress.deleted == 4 and not progress.complete
    assert replay(read_records(journal_path)).pending.keys() == {("g0", "rec")}
