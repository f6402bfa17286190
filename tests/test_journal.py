"""The deletion journal: fsynced appends, a torn last line, replay of outcomes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vccasync.content._journal import Journal, JournalRecord, Outcome, read_records, replay


def intent(guid: str, key: str = "k") -> JournalRecord:
    return JournalRecord(
        guid=guid, content_key=key, sha256="a" * 64, bytes=3, outcome=Outcome.INTENT
    )


def test_records_round_trip_and_every_append_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "deletions.jsonl"
    journal = Journal(path)
    records = [intent("g1"), intent("g1").then(Outcome.FAILED, "boom"), intent("g2")]
    journal.append(records[:1])
    journal.append(records[1:])
    journal.close()
    assert len(synced) == 3  # the new file's directory, then each append
    assert read_records(path) == records
    line = json.loads(path.read_text().splitlines()[1])
    assert set(line) == {
        "guid",
        "contentKey",
        "sha256",
        "bytes",
        "scope",
        "time",
        "outcome",
        "message",
    }
    assert (line["outcome"], line["message"]) == ("failed", "boom")


def test_a_torn_last_line_is_ignored_and_the_next_append_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "deletions.jsonl"
    whole = intent("g1")
    path.write_bytes(json.dumps(whole.to_json()).encode() + b"\n" + b'{"guid": "g2", "conte')
    assert read_records(path) == [whole]
    done = whole.then(Outcome.DELETED)
    journal = Journal(path)
    journal.append([done])
    journal.close()
    assert read_records(path) == [whole, done]
    assert read_records(tmp_path / "absent.jsonl") == []


def test_replay() -> None:
    a, b, c, d = intent("a"), intent("b"), intent("c"), intent("d")
    state = replay(
        [
            a, a.then(Outcome.DELETED),
            b,  # killed between the intent and the outcome
            c, c.then(Outcome.FAILED, "409"),
            d, d.then(Outcome.ALREADY_GONE),
        ]
    )  # fmt: skip
    assert set(state.gone) == {("a", "k"), ("d", "k")}
    assert set(state.pending) == {("b", "k")}
    assert set(state.failed) == {("c", "k")}
    again = replay([c, c.then(Outcome.FAILED, "409"), c])
    assert (set(again.pending), set(again.failed)) == ({("c", "k")}, set())


def test_an_unknown_outcome_is_pending_like_an_intent_without_one() -> None:
    a, b = intent("a"), intent("b")
    state = replay([a, a.then(Outcome.UNKNOWN, "timed out"), b, b.then(Outcome.DELETED)])
    assert set(state.pending) == {("a", "k")} and not state.failed
    assert state.pending["a", "k"].outcome is Outcome.UNKNOWN


def test_a_piece_deleted_again_after_it_was_gone_is_pending_from_its_new_intent() -> None:
    a = intent("a")
    state = replay([a, a.then(Outcome.DELETED), a])  # re-created upstream, deleted again
    assert set(state.pending) == {("a", "k")} and not state.gone
    state = replay([a, a.then(Outcome.DELETED), a, a.then(Outcome.DELETED)])
    assert set(state.gone) == {("a", "k")} and not state.pending
