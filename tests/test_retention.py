"""The retention plan (pure): every reason to keep a piece, whole interactions, the journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from vccasync._models import Content, Interaction
from vccasync.content._manifest import ManifestEntry
from vccasync.content._retention import (
    Action,
    Check,
    Piece,
    Reason,
    batch_size,
    decide,
    make_plan,
    paths_to_verify,
    pieces_of,
)
from vccasync.content._verify import FileCheck

SHA = "a" * 64
MODIFIED = datetime(2025, 1, 6, 10, 5, tzinfo=UTC)
ARCHIVED_NS = int(datetime(2025, 1, 7, tzinfo=UTC).timestamp()) * 10**9  # the file's mtime


def entry(
    guid: str,
    key: str,
    size: int = 10,
    sha: str = SHA,
    *,
    modified: str | None = "2025-01-06T10:05:00.000Z",
    path: str | None = None,
) -> ManifestEntry:
    return ManifestEntry(
        guid=guid, content_key=key, type="callRecording", content_type="audio/wav",
        start="2025-01-06T10:00:00.000Z", path=path or f"{guid}/{key}.wav", bytes=size,
        sha256=sha, last_modified=modified, content_length=None if modified is None else size,
    )  # fmt: skip


def piece(
    guid: str = "g1",
    key: str = "k",
    length: int | None = 10,
    kind: str = "callRecording",
    modified: datetime | None = MODIFIED,
) -> Piece:
    return Piece(guid, key, kind, length, modified)


def good(e: ManifestEntry) -> FileCheck:
    return FileCheck(e.path, e.sha256, e.bytes, ARCHIVED_NS)


def test_a_verified_piece_is_deleted() -> None:
    e = entry("g1", "k")
    d = decide(piece(), e, good(e))
    assert (d.action, d.reason, d.entry) == (Action.DELETE, None, e)


def test_every_reason_to_keep() -> None:
    e = entry("g1", "k")
    cases = [
        (decide(piece(), None, None), Reason.NOT_IN_ARCHIVE),
        (decide(piece(), e, None), Reason.MISSING),
        (decide(piece(), e, FileCheck(e.path, None, None)), Reason.MISSING),
        (decide(piece(), e, FileCheck(e.path, "b" * 64, 10, 1)), Reason.DIFFERS),
        (decide(piece(), e, FileCheck(e.path, SHA, 11, 1)), Reason.DIFFERS),
        (decide(piece(length=12), e, good(e)), Reason.SIZE_DIFFERS),
        (decide(piece(length=None), e, good(e)), Reason.NO_SIZE),
    ]
    for decision, reason in cases:
        assert (decision.action, decision.reason) == (Action.KEEP, reason)


def test_only_the_archived_version_is_deleted() -> None:
    e = entry("g1", "k")
    later = MODIFIED + timedelta(milliseconds=1)
    cases = [
        (piece(modified=later), Reason.OLDER_VERSION),  # reprocessed at the same length
        (piece(modified=MODIFIED - timedelta(seconds=1)), Reason.OTHER_VERSION),
        (piece(modified=None), Reason.NO_VERSION),
    ]
    for p, reason in cases:
        d = decide(p, e, good(e))
        assert (d.action, d.reason) == (Action.KEEP, reason), p
    # the same instant written another way is the same version
    offset = entry("g1", "k", modified="2025-01-06T11:05:00+01:00")
    assert decide(piece(), offset, good(offset)).action is Action.DELETE
    # a manifest whose recorded contentLength is not the file's is not that version
    odd = attrs.evolve(e, content_length=11)
    assert decide(piece(), odd, good(odd)).reason is Reason.SIZE_DIFFERS


def test_a_line_without_a_version_is_never_trusted() -> None:
    old = entry("g1", "k", modified=None)
    archived_at = datetime.fromtimestamp(ARCHIVED_NS / 1e9, UTC)
    # whatever the file's mtime says (a copy, a restore, a touch change it)
    for modified in (archived_at - timedelta(days=1), archived_at, MODIFIED, None):
        d = decide(piece(modified=modified), old, good(old))
        assert (d.action, d.reason) == (Action.KEEP, Reason.VERSION_UNKNOWN)


def test_validators_that_disagree_with_the_listed_version_are_kept() -> None:
    e = entry("g1", "k")  # lastModified 2025-01-06T10:05:00.000Z
    same = attrs.evolve(e, http_last_modified="Mon, 06 Jan 2025 10:05:00 GMT")
    assert decide(piece(), same, good(same)).action is Action.DELETE
    for date in ("Mon, 06 Jan 2025 10:04:59 GMT", "not a date", "Mon, 06 Jan 2025 10:05:00"):
        other = attrs.evolve(e, http_last_modified=date)
        d = decide(piece(), other, good(other))
        assert (d.action, d.reason) == (Action.KEEP, Reason.VALIDATORS_DIFFER), date
    subsecond = attrs.evolve(
        e, last_modified="2025-01-06T10:05:00.250Z", http_last_modified=same.http_last_modified
    )  # an HTTP date holds whole seconds
    modified = MODIFIED + timedelta(milliseconds=250)
    assert decide(piece(modified=modified), subsecond, good(subsecond)).action is Action.DELETE


def test_batch_size_fits_the_checks_in_the_bound() -> None:
    assert batch_size(10, 160) == 13  # 160 a minute: 13 fetched in 5 s
    assert batch_size(10, 60) == 5 and batch_size(1, 60) == 1 and batch_size(0.01, 1) == 1
    assert batch_size(10, 10**7) == 1000 and batch_size(10, None) == 1000
    assert Check("g", {}, at=5.0).fresh(15.0, 10) and not Check("g", {}, at=5.0).fresh(15.1, 10)


def test_a_path_that_leaves_the_archive_is_not_in_archive() -> None:
    cases = {
        "/etc/passwd": Reason.ABSOLUTE_PATH,
        "../elsewhere/k.wav": Reason.PARENT_PATH,
        "g1/../../k.wav": Reason.PARENT_PATH,
    }
    for path, reason in cases.items():
        e = entry("g1", "k", path=path)
        d = decide(piece(), e, good(e))
        assert (d.action, d.reason) == (Action.KEEP, reason)
        assert str(d.reason).startswith("not in archive: ")
        assert paths_to_verify([piece()], {("g1", "k"): e}) == []
    e = entry("g1", "k")
    outside = FileCheck(e.path, None, None, outside=True)
    assert decide(piece(), e, outside).reason is Reason.OUTSIDE


def test_a_piece_the_journal_has_deleted_but_the_api_lists_is_decided_again() -> None:
    e = entry("g1", "k")
    checks = {e.path: good(e)}
    plan = make_plan([piece()], {("g1", "k"): e}, checks, deleted={("g1", "k")})
    assert [d.action for d in plan.decisions] == [Action.DELETE]
    assert paths_to_verify([piece()], {("g1", "k"): e}) == [e.path]
    whole = make_plan([piece()], {("g1", "k"): e}, checks, deleted={("g1", "k")}, whole=True)
    assert [(d.action, d.reason) for d in whole.decisions] == [(Action.KEEP, Reason.RECREATED)]
    assert whole.whole == ()


def test_plan_summary_per_type_and_reason() -> None:
    a, b = entry("g1", "a", 10), entry("g2", "b", 20)
    pieces = [
        piece("g1", "a", 10),
        piece("g2", "b", 20),
        piece("g3", "c", 5, "transcript"),
        piece("g4", "d", 7, "transcript"),
    ]
    manifest = {("g1", "a"): a, ("g2", "b"): b, ("g4", "d"): entry("g4", "d", 7)}
    checks = {a.path: good(a), b.path: FileCheck(b.path, "c" * 64, 20, 1)}
    assert paths_to_verify(pieces, manifest) == [a.path, b.path, "g4/d.wav"]
    checks["g4/d.wav"] = good(manifest[("g4", "d")])
    summary = make_plan(pieces, manifest, checks).summary()
    assert list(summary) == ["callRecording", "transcript"]
    rec, text = summary["callRecording"], summary["transcript"]
    assert (rec.delete.pieces, rec.delete.bytes) == (1, 10)
    assert {r: (c.pieces, c.bytes) for r, c in rec.kept.items()} == {Reason.DIFFERS: (1, 20)}
    assert {r: (c.pieces, c.bytes) for r, c in text.kept.items()} == {Reason.NOT_IN_ARCHIVE: (1, 5)}
    assert (text.delete.pieces, text.delete.bytes) == (1, 7)


def test_whole_interactions_only_when_every_piece_verifies() -> None:
    entries = {(g, k): entry(g, k) for g, k in [("g1", "a"), ("g1", "b"), ("g2", "a"), ("g3", "a")]}
    checks = {e.path: good(e) for e in entries.values()}
    checks["g2/a.wav"] = FileCheck("g2/a.wav", None, None)
    pieces = [piece(g, k) for g, k in entries] + [piece("g2", "b"), piece("g4", "x")]
    entries[("g2", "b")] = entry("g2", "b")
    checks["g2/b.wav"] = good(entries[("g2", "b")])
    entries[("g4", "x")] = entry("g4", "x")
    plan = make_plan(pieces, entries, checks, deleted={("g4", "x")}, whole=True)
    assert plan.whole == ("g1", "g3")  # g2 has a missing file; g4 a piece deleted before
    by_key = {d.piece.key: d for d in plan.decisions}
    assert by_key[("g2", "b")].reason is Reason.PARTNER_KEPT
    assert by_key[("g2", "a")].reason is Reason.MISSING
    assert by_key[("g4", "x")].reason is Reason.RECREATED
    assert make_plan(pieces, entries, checks).whole is None


def test_batches_hold_at_most_the_given_number_of_guids() -> None:
    pieces = [piece(f"g{i:04}", "k") for i in range(2500)]
    entries = {p.key: entry(p.guid, "k") for p in pieces}
    checks = {e.path: good(e) for e in entries.values()}
    batches = make_plan(pieces, entries, checks, whole=True).batches()
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert [g for b in batches for g in b] == [p.guid for p in pieces]


def test_pieces_of_filters_types_and_drops_repeats() -> None:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    rec = Content("k1", "callRecording", content_length=3, last_modified=MODIFIED)
    text = Content("k2", "transcript", content_length=None)
    interactions = [Interaction("g", start, content=(rec, text, rec))]
    assert list(pieces_of(interactions)) == [
        Piece("g", "k1", "callRecording", 3, MODIFIED),
        Piece("g", "k2", "transcript", None, None),
    ]
    assert [p.content_key for p in pieces_of(interactions, {"transcript"})] == ["k2"]
