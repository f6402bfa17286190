"""``vccasync sync --content-dest`` killed while the pieces of committed rows download: the
next run fetches exactly what is missing, once, and nothing complete again.

The fake's gate holds content answers only (``gated={"content"}``): the pass itself completes
and commits, then its downloads stop at the gate, where the run is killed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vccasync.cli import _sync as sync_command
from vccasync.cli import main
from vccasync.cli._content import DEFAULT_WORKERS
from vccasync.content._manifest import MANIFEST_NAME
from vccasync.fake import (
    DatasetSpec,
    FakeConfig,
    FakeVccServer,
    FaultConfig,
    generate,
    running_in_thread,
)
from vccasync.fake._dataset import Dataset

from .cli_helpers import cli_env, run_cli, start_cli
from .content_helpers import expected_files, tree

ANCHOR = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
SPEC = DatasetSpec(
    seed=21, start=ANCHOR - timedelta(days=1), days=1, per_day=10, edge_every=None,
    content_scale=0.001,
)  # fmt: skip
PASSED = 3  # content answers let through before the gate holds the rest


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


@pytest.fixture
def fake(dataset: Dataset) -> Iterator[FakeVccServer]:
    config = FakeConfig(hold_after=PASSED, gated={"content"})
    with running_in_thread(dataset, config) as server:
        yield server


def manifest_keys(dest: Path) -> list[tuple[str, str]]:
    path = dest / MANIFEST_NAME
    lines = path.read_text().splitlines() if path.exists() else []
    return [(e["guid"], e["contentKey"]) for e in map(json.loads, lines)]


def covered(target: str) -> bool:
    try:
        with sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=0.2) as db:
            row = db.execute("SELECT covered_to FROM vccasync_sync").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] is not None


def until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def fetched(fake: FakeVccServer) -> list[tuple[str, str]]:
    """The (guid, content key) of every content request the fake answered since its reset."""
    out = []
    for record in fake.stats.records:
        head, sep, key = record.path.partition("/content/")
        if sep:
            out.append((head.rsplit("/", 1)[-1], key))
    return out


def test_a_run_killed_before_the_pieces_of_committed_rows_arrive_leaves_no_gap(
    fake: FakeVccServer, dataset: Dataset, tmp_path: Path
) -> None:
    target, dest = str(tmp_path / "store.sqlite"), tmp_path / "content"
    want = {
        (item["guid"], piece["contentKey"])
        for item in dataset.expected(SPEC.start, ANCHOR)
        for piece in item["content"]
    }
    assert len(want) > PASSED + 4
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
    args += ["--content-dest", str(dest)]
    env: dict[str, Any] = cli_env(fake)
    process = start_cli([*args, "--quiet"], env)
    assert fake.gate.wait_held(60), "the downloads never reached the gate"
    until(lambda: covered(target), "the pass committed")
    until(lambda: len(manifest_keys(dest)) == PASSED, "the pieces let through recorded")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert process.stderr is not None
    process.stderr.close()
    done_before = set(manifest_keys(dest))

    fake.gate.open()  # the held answers go to a dead client
    until(lambda: fake.stats.in_flight == 0, "the held answers ended")
    fake.reset_stats()
    done = run_cli(args, env)  # the store's queue kept what was owed
    assert done.returncode == 0, done.stderr
    again = fetched(fake)
    assert len(again) == len(set(again))  # nothing twice
    assert set(again) == want - done_before  # nothing complete again, nothing missing
    assert set(manifest_keys(dest)) == want
    assert tree(dest) == expected_files(dataset, SPEC.start, ANCHOR)

    fake.reset_stats()
    assert run_cli(args, env).returncode == 0
    assert fetched(fake) == []


def test_sigterm_ends_within_the_stop_timeout_while_downloads_hang(
    fake: FakeVccServer, dataset: Dataset, tmp_path: Path
) -> None:
    """The downloads stay held at the gate until the run has ended: it exits 0 all the same,
    so its stop is bounded by --stop-timeout (no wall-clock assertion needed); a rerun then
    fetches what was cut."""
    target, dest = str(tmp_path / "store.sqlite"), tmp_path / "content"
    want = {
        (item["guid"], piece["contentKey"])
        for item in dataset.expected(SPEC.start, ANCHOR)
        for piece in item["content"]
    }
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
    args += ["--content-dest", str(dest)]
    env: dict[str, Any] = cli_env(fake)
    process = start_cli([*args, "--follow", "--every", "1h", "--stop-timeout", "1s"], env)
    assert fake.gate.wait_held(60), "the downloads never reached the gate"
    until(lambda: covered(target), "the pass committed")
    until(lambda: len(manifest_keys(dest)) == PASSED, "the pieces let through recorded")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert b"stopped at --stop-timeout (1s)" in stderr and b"Traceback" not in stderr
    assert fake.gate.passed == PASSED  # the gate never let another answer through

    fake.gate.open()
    until(lambda: fake.stats.in_flight == 0, "the held answers ended")
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    assert set(manifest_keys(dest)) == want
    assert tree(dest) == expected_files(dataset, SPEC.start, ANCHOR)


def test_sigterm_ends_a_pass_whose_search_hangs(dataset: Dataset, tmp_path: Path) -> None:
    """A pass whose search answer never comes (held at the gate) still ends on SIGTERM within
    --stop-timeout, exit 0; the rerun then completes the pass."""
    target = str(tmp_path / "store.sqlite")
    with running_in_thread(dataset, FakeConfig(hold_after=0, gated={"search"})) as held:
        args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
        env: dict[str, Any] = cli_env(held)
        process = start_cli([*args, "--follow", "--every", "1h", "--stop-timeout", "1s"], env)
        assert held.gate.wait_held(60), "the search never reached the gate"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert b"stopped at --stop-timeout (1s)" in stderr and b"Traceback" not in stderr
        assert held.gate.passed == 0  # the search was still held when the run ended
        held.gate.open()
        until(lambda: held.stats.in_flight == 0, "the held answers ended")
        done = run_cli(args, env)
        assert done.returncode == 0, done.stderr
        assert covered(target)


CONTENT_FAILS = FaultConfig(rate=1.0, kinds=("500",), requests={"content"})


@pytest.fixture
def open_fake(dataset: Dataset) -> Iterator[FakeVccServer]:
    with running_in_thread(dataset, FakeConfig(faults=CONTENT_FAILS)) as server:
        yield server


def wanted(dataset: Dataset) -> set[tuple[str, str]]:
    return {
        (item["guid"], piece["contentKey"])
        for item in dataset.expected(SPEC.start, ANCHOR)
        for piece in item["content"]
    }


def in_process(args: list[str], fake: FakeVccServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``vccasync ARGS`` in this process (so that its clock can be the test's)."""
    for name, value in cli_env(fake).items():
        if name.startswith("VCC_"):
            monkeypatch.setenv(name, value)
    return main(args)


def test_failed_pieces_are_not_forgotten_between_one_shot_runs(
    open_fake: FakeVccServer,
    dataset: Dataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two failing one-shot runs 15 minutes apart, then a healthy one: exit 1, 1, 0, and the
    archive then holds every piece. The 15 minutes pass on the runs' clock (the queue's next
    tries) and in the store (its rows age), never in the test."""
    target, dest = tmp_path / "store.sqlite", tmp_path / "content"
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", str(target)]
    args += ["--content-dest", str(dest), "--max-attempts", "1"]
    now = [datetime.now(UTC)]
    monkeypatch.setattr(sync_command, "wall_clock", lambda: now[0], raising=False)
    want = wanted(dataset)

    codes = [in_process(args, open_fake, monkeypatch)]
    first = capsys.readouterr().err
    tried: list[set[tuple[str, str]]] = []
    for healthy in (False, True):
        now[0] += timedelta(minutes=15)
        age(target, timedelta(minutes=15))
        if healthy:
            open_fake.inject_faults(FaultConfig())
        open_fake.reset_stats()
        codes.append(in_process(args, open_fake, monkeypatch))
        tried.append(set(fetched(open_fake)))
    last = capsys.readouterr().err
    assert codes == [1, 1, 0], last
    assert tried == [want, want]  # each run tried every failed piece again
    assert set(manifest_keys(dest)) == want
    assert f"{len(want)} failed pieces stay queued" in first and "Traceback" not in first
    assert "content queue: empty" in last


def test_follow_stops_retrying_a_failed_piece_gone_upstream(
    open_fake: FakeVccServer,
    dataset: Dataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pieces fail; one is then deleted upstream (its interaction keeps another piece): the
    passes that follow never ask for it again, while the sync keeps running."""
    target, dest = tmp_path / "store.sqlite", tmp_path / "content"
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", str(target)]
    args += ["--content-dest", str(dest), "--max-attempts", "1", "--follow", "--every", "0.2s"]
    want = wanted(dataset)
    pos, item = next(
        (pos, item)
        for pos in range(len(dataset))
        if len((item := dataset.item(pos))["content"]) > 1
        and (item["guid"], item["content"][0]["contentKey"]) in want
    )
    gone = (item["guid"], item["content"][0]["contentKey"])
    after: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            until(lambda: set(fetched(open_fake)) == want, "every piece tried once")
            open_fake.reset_stats()
            dataset.removed_keys[pos] = frozenset({gone[1]})  # deleted upstream
            until(lambda: open_fake.stats.search_requests >= 4, "passes after the deletion")
            after.extend(fetched(open_fake))
        except BaseException as exc:
            errors.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=drive)
    helper.start()
    try:
        code = in_process(args, open_fake, monkeypatch)
    finally:
        helper.join(timeout=60)
    if errors:
        raise errors[0]
    assert code == 0
    assert gone not in after
    with sqlite3.connect(target) as db:
        rows = set(db.execute("SELECT guid, content_key FROM vccasync_content_queue"))
    assert gone not in rows and rows == want - {gone}  # the others stay owed


def age(target: Path, by: timedelta) -> None:
    """Move every instant the store wrote back by ``by`` (as if it had been written then)."""
    with sqlite3.connect(target) as db:
        for table, column in (("interactions", "updated_at"), ("vccasync_sync", "covered_to")):
            for rowid, text in db.execute(f"SELECT rowid, {column} FROM {table}").fetchall():
                if text:
                    moved = datetime.fromisoformat(text.replace("Z", "+00:00")) - by
                    db.execute(
                        f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                        (moved.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", rowid),
                    )


def test_status_shows_the_queue_and_sends_no_request(
    open_fake: FakeVccServer, dataset: Dataset, tmp_path: Path
) -> None:
    target, dest = str(tmp_path / "store.sqlite"), tmp_path / "content"
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
    env = cli_env(open_fake)
    assert run_cli([*args, "--content-dest", str(dest), "--max-attempts", "1"], env).returncode == 1
    open_fake.reset_stats()
    status = run_cli(["sync", "--status", "-o", target], cli_env(None))
    assert status.returncode == 0, status.stderr
    want = len(wanted(dataset))
    assert f"content queue: {want} pieces ({want} failed), oldest queued 0m ago" in status.stdout
    assert f"queue depth {want}, failed {want}," in status.stdout
    assert open_fake.stats.records == []
    missing = run_cli(["sync", "--status", "-o", str(tmp_path / "none.sqlite")], cli_env(None))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"vccasync: error: {tmp_path / 'none.sqlite'} does not exist"
    ]


MANY = DatasetSpec(
    seed=22, start=ANCHOR - timedelta(days=1), days=1, per_day=120, edge_every=None,
    content_scale=0.001,
)  # fmt: skip


@pytest.fixture(scope="module")
def many() -> Dataset:
    return generate(MANY)


def stored(target: str) -> int:
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=1) as db:
        return int(db.execute("SELECT count(*) FROM interactions").fetchone()[0])


def test_rows_commit_while_every_download_is_held(many: Dataset, tmp_path: Path) -> None:
    """The demo's case: downloads make no progress at all (held at the gate); the pass still
    commits every row, SIGTERM ends the run at --stop-timeout, and the rerun downloads every
    piece once."""
    target, dest = str(tmp_path / "store.sqlite"), tmp_path / "content"
    items = many.expected(MANY.start, ANCHOR)
    want = {(i["guid"], p["contentKey"]) for i in items for p in i["content"]}
    assert len(want) > 60  # far more than the downloads in flight and queued in memory
    config = FakeConfig(hold_after=0, gated={"content"})
    with running_in_thread(many, config) as fake:
        args = ["sync", "--since", MANY.start.isoformat(), "--rpm", "100000", "-o", target]
        args += ["--content-dest", str(dest)]
        env: dict[str, Any] = cli_env(fake)
        process = start_cli([*args, "--stop-timeout", "1s"], env)
        assert fake.gate.wait_held(60), "the downloads never reached the gate"
        until(lambda: covered(target), "the pass committed", seconds=30)
        assert stored(target) == len(items)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert b"stopped at --stop-timeout (1s)" in stderr
        assert fake.gate.passed == 0
        fake.gate.open()
        until(lambda: fake.stats.in_flight == 0, "the held answers ended")
        fake.reset_stats()
        done = run_cli(args, env)
        assert done.returncode == 0, done.stderr
        assert sorted(fetched(fake)) == sorted(want)  # every piece, once
        assert set(manifest_keys(dest)) == want


def test_sigterm_starts_no_new_download_and_ends_once_those_in_flight_end(
    many: Dataset, tmp_path: Path
) -> None:
    """After SIGTERM no download starts; those in flight finish (the gate lets them go) and
    the run ends without waiting for its --stop-timeout (an hour); the queue keeps the rest,
    and its depth was a metric all along."""
    target, dest, port = str(tmp_path / "store.sqlite"), tmp_path / "content", free_port()
    items = many.expected(MANY.start, ANCHOR)
    want = {(i["guid"], p["contentKey"]) for i in items for p in i["content"]}
    with running_in_thread(many, FakeConfig(hold_after=PASSED, gated={"content"})) as fake:
        args = ["sync", "--since", MANY.start.isoformat(), "--rpm", "100000", "-o", target]
        args += ["--content-dest", str(dest), "--follow", "--every", "1h"]
        args += ["--stop-timeout", "1h", "--metrics-port", str(port)]
        process = start_cli(args, cli_env(fake))
        lines = Lines(process)
        try:
            until(lambda: covered(target), "the pass committed")
            until(lambda: fake.gate.held == DEFAULT_WORKERS, "every worker held at the gate")
            until(
                lambda: scrape(port).get("vccasync_sync_content_queue_depth") == len(want) - PASSED,
                "the queue's depth served",
            )
            assert scrape(port)["vccasync_sync_content_queue_oldest_seconds"] >= 0
            process.send_signal(signal.SIGTERM)
            lines.next_with("no new download starts")
            fake.gate.open()  # those in flight end now
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0
        assert fake.gate.passed == PASSED + DEFAULT_WORKERS  # nothing started after SIGTERM
        with sqlite3.connect(target) as db:
            queued = db.execute("SELECT count(*) FROM vccasync_content_queue").fetchone()[0]
        assert queued == len(want) - PASSED - DEFAULT_WORKERS  # the queue keeps the rest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines())
        if name.startswith("vccasync_sync_content")
    }


class Lines:
    """The stderr lines of a run, read in a thread, so that waiting for one can time out."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert process.stderr is not None
        stream = process.stderr

        def read() -> None:
            for raw in stream:
                self._lines.put(raw.decode())
            self._lines.put(None)

        threading.Thread(target=read, daemon=True).start()

    def next_with(self, needle: str, seconds: float = 60) -> str:
        """The next line holding ``needle``."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the run never said {needle!r}") from None
            assert line is not None, f"the run ended without saying {needle!r}"
            assert "Traceback" not in line
            if needle in line:
                return line
