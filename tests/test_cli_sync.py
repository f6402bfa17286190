"""``vccasync sync`` as a subprocess against the fake's timeline: passes, --follow stopped by
SIGTERM, kill -9 and rerun, content of new and changed pieces, refusals.

Clocks: the command takes its "now" from the wall clock; the fake's timeline runs on a manual
:class:`FakeClock` anchored at the wall clock when the module loads, which the test advances
between runs (content revealed late, pieces updated, removals). Every interaction starts
before that anchor, so a pass, whatever the wall clock says, covers all of them and sees the
fake exactly as its clock stands. Interruptions land while the fake holds a search answer at
its gate, never racing a signal against the run.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync._instants import parse_instant
from vccasync.content._manifest import MANIFEST_NAME, Manifest
from vccasync.content._retention import Action, Decision, Piece, decide
from vccasync.content._verify import check_file
from vccasync.fake import (
    DatasetSpec,
    FakeConfig,
    FakeVccServer,
    FaultConfig,
    generate,
    running_in_thread,
)
from vccasync.fake._dataset import Dataset
from vccasync.fake._timeline import FakeClock, Timeline, TimelineSpec

from .cli_helpers import cli_env, run_cli, start_cli
from .conftest import api_shape
from .sync_store_helpers import Row, read_store

ANCHOR = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
SPEC = DatasetSpec(
    seed=21, start=ANCHOR - timedelta(days=3), days=3, per_day=1000, edge_every=None,
    content_scale=0.001,
)  # fmt: skip
SINCE = SPEC.start.isoformat()
CHANGING = TimelineSpec(late_rate=0.3, update_rate=0.4, removal_rate=0.05)
ARGS = ["sync", "--since", SINCE, "--lookback", "4d", "--rpm", "100000"]  # pass lines


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(ANCHOR)


@pytest.fixture
def timeline(dataset: Dataset, clock: FakeClock) -> Timeline:
    return Timeline.for_dataset(dataset, clock, CHANGING)


@pytest.fixture
def fake(dataset: Dataset, timeline: Timeline) -> Iterator[FakeVccServer]:
    with running_in_thread(dataset, FakeConfig(timeline=timeline)) as server:
        yield server


def view(timeline: Timeline, dataset: Dataset) -> dict[str, dict[str, Any]]:
    """The API's current view of all the data, by guid."""
    return {i["guid"]: api_shape(i) for i in timeline.expected(dataset, SPEC.start, ANCHOR)}


def assert_exact(target: str, want: dict[str, dict[str, Any]]) -> dict[str, Row]:
    store = read_store(target)
    assert {g: row.data for g, row in store.items() if row.removed_at is None} == want
    for guid, item in want.items():
        assert store[guid].content == tuple(sorted(p["contentKey"] for p in item["content"]))
    return store


def sync(fake: FakeVccServer, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    done = run_cli([*ARGS, "-o", target, *extra], cli_env(fake))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def counts(stderr: str) -> dict[str, int]:
    """The last summary line's counts."""
    line = [x for x in stderr.splitlines() if "complete up to" in x][-1]
    return {kind: int(line.split(f" {kind}")[0].split()[-1].replace(",", "")) for kind in (
        "new", "changed", "removed", "unchanged")}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    return str(request.getfixturevalue("pg_dsn"))


@pytest.mark.slow
def test_two_passes_leave_the_store_equal_to_the_api(
    fake: FakeVccServer, dataset: Dataset, timeline: Timeline, clock: FakeClock, target: str
) -> None:
    first = sync(fake, target)
    before = view(timeline, dataset)
    assert counts(first.stderr)["new"] == len(before)
    store1 = assert_exact(target, before)

    clock.advance(timedelta(hours=3))
    second = sync(fake, target)
    after = view(timeline, dataset)
    store2 = assert_exact(target, after)
    gone = set(before) - set(after)
    assert gone and {g for g, row in store2.items() if row.removed_at is not None} == gone
    changed = {g for g in set(before) & set(after) if before[g] != after[g]}
    assert counts(second.stderr) == {
        "new": len(set(after) - set(before)),
        "changed": len(changed),
        "removed": len(gone),
        "unchanged": len(after) - len(set(after) - set(before)) - len(changed),
    }
    assert changed and all(store2[g].updated_at != store1[g].updated_at for g in changed)
    untouched = set(before) & set(after) - changed
    assert all(store2[g].updated_at == store1[g].updated_at for g in untouched)


def wait_for_line(process: subprocess.Popen[bytes], needle: str) -> str:
    """Read the run's stderr until a line holds ``needle``."""
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode()
        assert "Traceback" not in line
        if needle in line:
            return line
    raise AssertionError(f"the run ended without saying {needle!r}")


def test_follow_ends_with_exit_0_on_sigterm(
    fake: FakeVccServer, dataset: Dataset, timeline: Timeline, clock: FakeClock, tmp_path: Path
) -> None:
    target = str(tmp_path / "store.sqlite")
    args, env = [*ARGS, "-o", target, "--follow", "--every", "1h"], cli_env(fake)
    process = start_cli(args, env)
    wait_for_line(process, "complete up to")  # pass 1 done: the next is an hour away
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert_exact(target, view(timeline, dataset))

    clock.advance(timedelta(hours=3))  # a second follow: its first pass catches up
    process = start_cli(args, env)
    wait_for_line(process, "complete up to")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0
    store = assert_exact(target, view(timeline, dataset))
    assert any(row.removed_at is not None for row in store.values())


def lines_until(process: subprocess.Popen[bytes], needle: str) -> list[str]:
    """Every stderr line of the run up to the first one holding ``needle``."""
    assert process.stderr is not None
    seen = []
    for raw in process.stderr:
        seen.append(raw.decode())
        assert "Traceback" not in seen[-1]
        if needle in seen[-1]:
            return seen
    raise AssertionError(f"the run ended without saying {needle!r}: {seen}")


def test_follow_logs_a_failed_pass_and_the_next_pass_completes(
    fake: FakeVccServer, dataset: Dataset, timeline: Timeline, tmp_path: Path
) -> None:
    target = str(tmp_path / "store.sqlite")
    fake.inject_faults(FaultConfig(rate=1.0, kinds=("500",)))
    fake.gate.hold_after(1)  # pass 1's first search answer is a 500; pass 2 waits at the gate
    args = [*ARGS, "-o", target, "--follow", "--every", "1s", "--max-attempts", "1"]
    process = start_cli(args, cli_env(fake))
    failed = lines_until(process, "sync pass failed")
    assert fake.gate.wait_held(60), "no next pass"
    fake.inject_faults(FaultConfig())
    fake.gate.open()
    rest = lines_until(process, "complete up to")
    assert sum("sync pass failed" in line for line in failed + rest) == 1
    assert "500" in failed[-1]
    process.send_signal(signal.SIGTERM)
    _, tail = process.communicate(timeout=30)
    assert process.returncode == 0, tail
    assert_exact(target, view(timeline, dataset))


def pass_state(target: str) -> dict[str, Any] | None:
    """The checkpoint of the pass under way, as committed (None: no pass under way)."""
    try:
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=0.2) as db:
            row = db.execute("SELECT checkpoint FROM vccasync_sync").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None or row[0] is None else dict(json.loads(row[0]))


def held_with_pages(fake: FakeVccServer, target: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until the fake holds a search of ``process`` and pages of its pass are committed."""
    assert fake.gate.wait_held(60), "the run never reached the gate"
    for _ in range(6000):
        if (pass_state(target) or {}).get("written", 0) > 0:
            return
        assert process.poll() is None, "the run ended while the fake held it"
        time.sleep(0.01)
    raise AssertionError("no page was ever committed")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill -9", "SIGTERM", "Ctrl-C"])
def test_a_pass_interrupted_mid_way_resumes_exactly(
    fake: FakeVccServer,
    dataset: Dataset,
    timeline: Timeline,
    clock: FakeClock,
    tmp_path: Path,
    how: str,
) -> None:
    target = str(tmp_path / "store.sqlite")
    sync(fake, target)
    clock.advance(timedelta(hours=3))
    fake.gate.hold_after(2)
    process = start_cli([*ARGS, "-o", target, "--follow"], cli_env(fake))
    held_with_pages(fake, target, process)
    mid = pass_state(target)
    assert mid is not None and mid["pending"]
    if how == "kill -9":
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    else:
        process.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
        fake.gate.open()  # the pages held come in; the run stops at the next page boundary
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == (0 if how == "SIGTERM" else 130), stderr
        assert b"Traceback" not in stderr
    fake.gate.open()
    assert all(row.removed_at is None for row in read_store(target).values())  # not judged
    assert pass_state(target) is not None  # the pass is still under way
    done = sync(fake, target)  # resumes the pass, then judges removals
    assert counts(done.stderr)["unchanged"] < len(view(timeline, dataset))
    store = assert_exact(target, view(timeline, dataset))
    assert any(row.removed_at is not None for row in store.values())
    assert pass_state(target) is None


def manifest(dest: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (dest / "manifest.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_content_dest_fetches_only_new_and_changed_pieces(
    fake: FakeVccServer, dataset: Dataset, timeline: Timeline, clock: FakeClock, tmp_path: Path
) -> None:
    target, dest = str(tmp_path / "store.sqlite"), tmp_path / "content"
    before = view(timeline, dataset)
    fake.reset_stats()
    sync(fake, target, "--content-dest", str(dest))
    pieces = {(g, p["contentKey"]): p for g, item in before.items() for p in item["content"]}
    assert fake.stats.content_requests == len(pieces)
    assert {(e["guid"], e["contentKey"]) for e in manifest(dest)} == set(pieces)

    clock.advance(timedelta(hours=3))
    after = view(timeline, dataset)
    fresh = {
        (g, p["contentKey"])
        for g, item in after.items()
        for p in item["content"]
        if pieces.get((g, p["contentKey"])) != p
    }
    assert fresh
    fake.reset_stats()
    sync(fake, target, "--content-dest", str(dest), "--type", "callRecording")
    recordings = {k for k in fresh if after[k[0]]["content"] and _type(after, k) == "callRecording"}
    assert fake.stats.content_requests == len(recordings) > 0
    with sqlite3.connect(target) as db:  # a sync owes only the types it downloads
        owed = set(db.execute("SELECT guid, content_key FROM vccasync_content_queue"))
    assert owed == set()
    fake.reset_stats()
    sync(fake, target, "--content-dest", str(dest))  # nothing changed since: nothing owed
    assert fake.stats.content_requests == 0
    entries = Manifest.load(dest / MANIFEST_NAME).entries
    current = {(g, p["contentKey"]) for g, item in after.items() for p in item["content"]}
    current -= fresh - recordings  # changed pieces of types the second sync did not download
    assert current <= set(entries)  # (those of removed interactions stay archived)
    for key in current:  # each entry names the current version, verified on disk
        assert entries[key].version_known
        assert decide_now(dest, key, after, entries).action is Action.DELETE
    fake.reset_stats()
    sync(fake, target, "--content-dest", str(dest))  # nothing changed since: nothing fetched
    assert fake.stats.content_requests == 0


def decide_now(
    dest: Path, key: tuple[str, str], view: dict[str, dict[str, Any]], entries: dict[Any, Any]
) -> Decision:
    """What purge would decide for one piece of ``view`` given the archive under ``dest``."""
    piece = next(p for p in view[key[0]]["content"] if p["contentKey"] == key[1])
    entry = entries[key]
    modified = parse_instant(piece["lastModified"])
    found = Piece(key[0], key[1], piece["type"], piece["contentLength"], modified)
    return decide(found, entry, check_file(dest, entry.path))


def _type(view: dict[str, dict[str, Any]], key: tuple[str, str]) -> str:
    guid, content_key = key
    return next(p["type"] for p in view[guid]["content"] if p["contentKey"] == content_key)


def test_bad_input_and_refused_credentials(fake: FakeVccServer, tmp_path: Path) -> None:
    env = cli_env(fake)
    store = str(tmp_path / "store.sqlite")
    for args, message in [
        (["-o", store], "give --since"),
        (["-o", str(tmp_path / "x.jsonl"), "--since", SINCE], "SQLite file"),
        (["-o", store, "--since", SINCE, "--lookback", "3x"], "--lookback must look like"),
        (["-o", store, "--since", SINCE, "--type", "voicemail"], "--content-dest"),
    ]:
        fake.reset_stats()
        done = run_cli(["sync", *args], env)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert fake.stats.requests == 0
    done = run_cli(["sync", "-o", store, "--since", SINCE], {**env, "VCC_CLIENT_SECRET": "no"})
    assert done.returncode == 3 and "authentication" in done.stderr
