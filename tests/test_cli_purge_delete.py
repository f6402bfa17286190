"""``vccasync purge --yes`` end to end against the fake's delete endpoints: exactly the verified
pieces, one at a time, nothing sent twice; whole interactions in batches; a token without the
delete scope; ``kill -9`` in the middle and a rerun; the demo."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from vccasync._config import READ_SCOPE
from vccasync.content._journal import JOURNAL_NAME, Outcome, read_records, replay
from vccasync.content._manifest import MANIFEST_NAME, Manifest
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake import running_in_thread as serve
from vccasync.fake._deletes import DeleteConfig

from .cli_helpers import cli_env, kill_9_when, run_cli, start_cli

START = datetime(2025, 1, 1, tzinfo=UTC)
RANGE = ["--start", "2025-01-02", "--end", "2025-01-03"]
FAST = ["--requests-per-minute", "60000", "--deletes-per-minute", "60000", "--quiet"]
SPEC = DatasetSpec(seed=12, start=START, days=4, per_day=10, content_scale=0.01)
CONTENT_PATH = re.compile(r"/interactions/([^/]+)/content/([^/]+)$")

Key = tuple[str, str]


def archived(fake: FakeVccServer, dest: Path) -> set[Key]:
    """Run 'vccasync content' of RANGE into ``dest``; the archived pieces."""
    args = ["content", *RANGE, "--dest", str(dest), "--requests-per-minute", "60000", "-q"]
    done = run_cli(args, cli_env(fake))
    assert done.returncode == 0, done.stderr
    return set(Manifest.load(dest / MANIFEST_NAME).entries)


def with_versions(fake: FakeVccServer, dest: Path) -> None:
    """Record in ``dest``'s manifest the version of each piece the fake holds now
    (``lastModified``, ``contentLength``), as a download records it."""
    lines = []
    for entry in Manifest.load(dest / MANIFEST_NAME).entries.values():
        item = fake.dataset.get(entry.guid)
        assert item is not None
        (piece,) = (c for c in item["content"] if c["contentKey"] == entry.content_key)
        version = {"last_modified": piece["lastModified"], "content_length": piece["contentLength"]}
        lines.append(json.dumps(attrs.evolve(entry, **version).to_json()))
    (dest / MANIFEST_NAME).write_text("\n".join(lines) + "\n")


def spoil(dest: Path) -> set[Key]:
    """Corrupt one archived file and remove another; their keys."""
    entries = Manifest.load(dest / MANIFEST_NAME).entries.values()
    first, second = sorted(entries, key=lambda e: e.path)[:2]
    path = dest / first.path
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    (dest / second.path).unlink()
    return {(first.guid, first.content_key), (second.guid, second.content_key)}


def content_deletes(fake: FakeVccServer) -> Counter[Key]:
    """The pieces of content the fake was asked to delete, with how often (a purge never
    downloads, so every request to a content path is a deletion)."""
    found = (CONTENT_PATH.search(r.path) for r in fake.stats.records)
    return Counter((m[1], m[2]) for m in found if m is not None)


def upstream(fake: FakeVccServer, pieces: Iterable[Key]) -> set[Key]:
    """Which of ``pieces`` the fake still has."""
    data, left = fake.dataset, set()
    for guid, key in pieces:
        pos = data.position(guid)
        if pos is None or not data.has_content(pos):
            continue
        if any(c["contentKey"] == key for c in data.item(pos)["content"]):
            left.add((guid, key))
    return left


def journal(dest: Path) -> Any:
    return replay(read_records(dest / JOURNAL_NAME))


def test_deletes_exactly_the_verified_pieces_one_at_a_time(tmp_path: Path) -> None:
    # each deletion takes a moment in the fake, so two sent at once would overlap there
    with serve(generate(SPEC), FakeConfig(deletes=DeleteConfig(latency=0.02))) as fake:
        entries = archived(fake, tmp_path)
        kept = spoil(tmp_path)
        fake.stats.reset()
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes", *FAST]
        done = run_cli(args, cli_env(fake))
        assert done.returncode == 1, done.stderr
        assert content_deletes(fake) == Counter(entries - kept)
        assert upstream(fake, entries) == kept
        deletes = fake.stats.deletes
        assert deletes.requests == deletes.content_deleted == len(entries - kept)
        assert deletes.max_in_flight == 1 and deletes.concurrent_refused == 0
        assert set(re.findall(r"^kept: (\S+) (\S+) ", done.stdout, re.M)) == kept
        state = journal(tmp_path)
        assert set(state.gone) == entries - kept and not state.pending
        assert {r.outcome for r in state.gone.values()} == {Outcome.DELETED}
        lines = [json.loads(x) for x in (tmp_path / JOURNAL_NAME).read_text().splitlines()]
        assert {"guid", "contentKey", "sha256", "time", "outcome"} <= set(lines[0])

        fake.stats.reset()
        again = run_cli(args, cli_env(fake))
        assert again.returncode == 1, again.stderr
        assert fake.stats.delete_requests == 0
        assert set(re.findall(r"^kept: (\S+) (\S+) ", again.stdout, re.M)) == kept


def test_whole_interactions_go_in_batches(tmp_path: Path) -> None:
    with serve(generate(SPEC)) as fake:
        entries = archived(fake, tmp_path)
        guids = {g for g, _ in entries}
        fake.stats.reset()
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes", "--whole-interactions"]
        done = run_cli([*args, *FAST], cli_env(fake))
        assert done.returncode == 0, done.stderr
        deletes = fake.stats.deletes
        assert deletes.batch_sizes == [len(guids)] and deletes.requests == 1
        assert deletes.interactions_deleted == len(guids) and not upstream(fake, entries)
        assert not content_deletes(fake)
        assert {r.scope for r in journal(tmp_path).gone.values()} == {"interaction"}

        fake.stats.reset()
        plan = run_cli(["purge", *RANGE, "--archive", str(tmp_path), *FAST], cli_env(fake))
        assert plan.returncode == 0 and "kept:" not in plan.stdout
        assert fake.stats.delete_requests == 0


def test_a_token_without_the_delete_scope_is_one_clear_error(tmp_path: Path) -> None:
    with serve(generate(SPEC)) as fake:
        entries = archived(fake, tmp_path)
    with serve(generate(SPEC), FakeConfig(scopes=(READ_SCOPE,))) as fake:
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes", *FAST]
        done = run_cli(args, cli_env(fake))
        assert fake.stats.delete_requests == 1 and fake.stats.statuses[403] == 1
        assert upstream(fake, entries) == entries
    assert done.returncode == 3, done.stderr
    assert "interaction-content:delete" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    state = journal(tmp_path)
    assert len(state.pending) == 1 and not state.gone  # settled by the next run


def test_kill_9_in_the_middle_then_rerun_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    with serve(generate(SPEC)) as fake:
        entries = archived(fake, tmp_path)
        assert len(entries) >= 10
        fake.stats.reset()
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes"]
        # one deletion a second: the run is killed once 3 are recorded, long before its end
        slow = ["--requests-per-minute", "60000", "--deletes-per-minute", "60", "--quiet"]
        process = start_cli([*args, *slow], cli_env(fake))
        kill_9_when(process, lambda: len(journal(tmp_path).gone) >= 3)
        assert 3 <= len(journal(tmp_path).gone) < len(entries)

        done = run_cli([*args, *FAST], cli_env(fake))
        assert done.returncode == 0, done.stderr
        assert not upstream(fake, entries)
        # every piece asked for once over both runs: none lost, none sent again
        assert content_deletes(fake) == Counter(entries)
        state = journal(tmp_path)
        assert set(state.gone) == entries and not state.pending


def test_demo(tmp_path: Path) -> None:
    narrow = ["--start", "2025-01-06T09:00:00Z", "--end", "2025-01-06T10:00:00Z"]
    env = cli_env(None)
    content = run_cli(["content", "--demo", *narrow, "--dest", str(tmp_path), "-q"], env)
    assert content.returncode == 0, content.stderr
    # the demo's own deletion budget (no --deletes-per-minute)
    done = run_cli(["purge", "--demo", *narrow, "--archive", str(tmp_path), "--yes", "-q"], env)
    assert done.returncode == 0, done.stderr
    assert "complete:" in done.stderr
    state = journal(tmp_path)
    assert set(state.gone) == set(Manifest.load(tmp_path / MANIFEST_NAME).entries)


def test_whole_interactions_keep_a_piece_reprocessed_after_the_search(tmp_path: Path) -> None:
    # the gate holds the purge at its first GET /interactions/{guid}: after the search, before
    # any batch; meanwhile one piece is reprocessed upstream at the same length
    config = FakeConfig(hold_after=0, gated={"get"})
    with serve(generate(SPEC), config) as fake:
        entries = archived(fake, tmp_path)
        with_versions(fake, tmp_path)
        guids = {g for g, _ in entries}
        guid, key = sorted(entries)[0]
        before = fake.dataset.get(guid)
        fake.stats.reset()
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes", "--whole-interactions"]
        process = start_cli([*args, *FAST], cli_env(fake))
        assert fake.gate.wait_held(60), "the purge never fetched an interaction again"
        fake.dataset.revise(guid, key)
        fake.gate.open()
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 1, stderr
        after = fake.dataset.get(guid)
        assert before is not None and after is not None
        (old,) = (c for c in before["content"] if c["contentKey"] == key)
        (new,) = (c for c in after["content"] if c["contentKey"] == key)
        assert new["contentLength"] == old["contentLength"]
        assert new["lastModified"] > old["lastModified"]
        mine = {k for k in entries if k[0] == guid}
        assert upstream(fake, entries) == mine  # the reprocessed piece's interaction stays
        assert fake.stats.get_requests == len(guids)  # each fetched once, before the batch
        deletes = fake.stats.deletes
        assert deletes.batch_sizes == [len(guids) - 1]
        state = journal(tmp_path)
        assert not mine & set(state.gone) and not state.pending

        fake.stats.reset()
        plan = run_cli(["purge", *RANGE, "--archive", str(tmp_path), *FAST], cli_env(fake))
        assert plan.returncode == 0, plan.stderr
        assert f"kept: {guid} {key} " in plan.stdout
        assert "archive holds an older version" in plan.stdout


def test_a_piece_reprocessed_right_after_the_search_is_kept(tmp_path: Path) -> None:
    # the gate holds the purge's first check (GET /interactions/{guid}), after the search;
    # meanwhile one piece is reprocessed upstream at the same length
    config = FakeConfig(hold_after=0, gated={"get"})
    with serve(generate(SPEC), config) as fake:
        entries = archived(fake, tmp_path)
        guid, key = sorted(entries)[-1]
        fake.stats.reset()
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes"]
        process = start_cli([*args, *FAST], cli_env(fake))
        assert fake.gate.wait_held(60), "the purge deleted without checking first"
        fake.dataset.revise(guid, key)
        fake.gate.open()
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 1, stderr
        assert upstream(fake, entries) == {(guid, key)}  # only the reprocessed piece stays
        assert (guid, key) not in content_deletes(fake)
        assert fake.stats.get_requests == len(entries)  # one check per deletion
        state = journal(tmp_path)
        assert set(state.gone) == entries - {(guid, key)} and not state.pending
