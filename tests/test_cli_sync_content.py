"""``vccasync sync --content-dest`` killed while the pieces of committed rows download: the
next run fetches exactly what is missing, once, and nothing complete again.

The fake's gate holds content answers only (``gated={"content"}``): the pass itself completes
and commits, then its downloads stop at the gate, where the run is killed.
"""

from __future__ import annotations

import json
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

from vccasync.content.manifest import MANIFEST_NAME
from vccasync.fake import (
    DatasetSpec,
    FakeConfig,
    FakeVccServer,
    FaultConfig,
    generate,
    running_in_thread,
)
from vccasync.fake.dataset import Dataset

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
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    assert f"{len(want) - PASSED} pieces of the last pass to fetch again" in done.stderr
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


def test_a_one_shot_sync_with_pieces_not_downloaded_exits_1(
    open_fake: FakeVccServer, dataset: Dataset, tmp_path: Path
) -> None:
    target, dest = str(tmp_path / "store.sqlite"), tmp_path / "content"
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
    args += ["--content-dest", str(dest), "--max-attempts", "1"]
    env = cli_env(open_fake)
    failed = run_cli(args, env)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    want = wanted(dataset)
    assert f"; {len(want)} pieces not downloaded" in failed.stderr

    open_fake.inject_faults(FaultConfig())
    done = run_cli(args, env)  # the last pass's lacking pieces are fetched again
    assert done.returncode == 0, done.stderr
    assert set(manifest_keys(dest)) == want


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


def test_follow_retries_failed_pieces_at_the_next_pass_and_counts_them(
    open_fake: FakeVccServer, dataset: Dataset, tmp_path: Path
) -> None:
    target, dest, port = str(tmp_path / "store.sqlite"), tmp_path / "content", free_port()
    args = ["sync", "--since", SPEC.start.isoformat(), "--rpm", "100000", "-o", target]
    args += ["--content-dest", str(dest), "--max-attempts", "1", "--follow", "--every", "1s"]
    args += ["--metrics-port", str(port)]
    want = wanted(dataset)
    process = start_cli(args, cli_env(open_fake))
    lines = Lines(process)
    try:
        line = lines.next_with("pieces not downloaded")
        assert f"{len(want)} failed; {len(want)} pieces not downloaded" in line
        metrics = scrape(port)
        assert metrics["vccasync_sync_content_failures_total"] == len(want)
        assert metrics["vccasync_sync_content_missing_pieces"] == len(want)

        open_fake.inject_faults(FaultConfig())  # no new change upstream: only the retry fetches
        line = lines.next_with("pieces not downloaded")
        assert f"{len(want)} downloaded, 0 failed; 0 pieces not downloaded" in line
        assert set(manifest_keys(dest)) == want
        metrics = scrape(port)
        assert metrics["vccasync_sync_content_failures_total"] == len(want)
        assert metrics["vccasync_sync_content_missing_pieces"] == 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0


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
