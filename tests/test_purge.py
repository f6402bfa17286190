"""The purge engine against an in-process stand-in of the API: what is sent, what is journaled,
a run stopped between sending and recording, whole interactions in batches."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vccasync.content.journal import JOURNAL_NAME, Journal, Outcome, read_records, replay
from vccasync.content.manifest import MANIFEST_NAME, Manifest, ManifestEntry
from vccasync.content.purge import PurgeProgress, purge
from vccasync.content.retention import Reason
from vccasync.deletes import DeleteFailure, DeleteOutcome
from vccasync.errors import AuthenticationError, NotFoundError
from vccasync.models import Content, Interaction

START = datetime(2025, 1, 6, tzinfo=UTC)


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

    async def search(self) -> AsyncIterator[Interaction]:
        for interaction in list(self.upstream.values()):
            await asyncio.sleep(0)
            yield interaction

    async def interaction(self, guid: str) -> Interaction:
        if guid not in self.upstream:
            raise NotFoundError("not found", status=404)
        return self.upstream[guid]

    async def _deleting(self) -> None:
        self.overlapped |= self.in_flight > 0
        self.in_flight += 1
        await asyncio.sleep(0)

    async def _done(self) -> None:
        if self.gate is not None:
            self.held.set()
            await self.gate.wait()
        self.in_flight -= 1

    async def delete_content(self, guid: str, content_key: str) -> DeleteOutcome:
        if self.auth_error:
            raise AuthenticationError("the token lacks the interaction-content:delete scope")
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
        return DeleteOutcome.DELETED if present else DeleteOutcome.ALREADY_GONE

    async def delete_interactions(self, guids: Iterable[str]) -> list[DeleteFailure]:
        guids = list(guids)
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


def archive_of(root: Path, interactions: list[Interaction]) -> None:
    """What 'vccasync content' leaves: files and manifest lines (contents of contentLength)."""
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
                )
            )  # fmt: skip
    manifest.close()


def dataset(n: int = 4) -> list[Interaction]:
    out = []
    for i in range(n):
        guid = f"g{i}"
        content = tuple(
            Content(key, kind, content_length=len(guid + key) * 4)
            for key, kind in (("rec", "callRecording"), ("txt", "transcript"))
        )
        out.append(Interaction(guid, START, content=content))
    return out


async def run(api: Api, root: Path, **options: Any) -> PurgeProgress:
    return await purge(api, api.search(), root, **options)


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
    assert api.sent == [("g1", "g2", "g3", "g4")]
    # g3 was already gone: a batch does not tell it apart, so it counts as deleted
    assert (progress.deleted, progress.already_gone, progress.failed) == (6, 0, 2)
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
