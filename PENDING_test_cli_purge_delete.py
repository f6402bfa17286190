"""``vccasync purge --yes`` end to end against the fake's delete endpoints.

PENDING: needs the library's delete methods and the fake's delete endpoints (another branch).
After the merge, move this file to ``tests/test_cli_purge_delete.py`` and adapt the four
accessors below to the names the fake gives its delete statistics and its scope switch.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vccasync.content.journal import JOURNAL_NAME, Outcome, read_records, replay
from vccasync.content.manifest import MANIFEST_NAME, Manifest
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake import running_in_thread as serve

from .cli_helpers import cli_env, kill_9_when, run_cli, start_cli

START = datetime(2025, 1, 1, tzinfo=UTC)
RANGE = ["--start", "2025-01-02", "--end", "2025-01-03"]
FAST = ["--requests-per-minute", "60000", "--deletes-per-minute", "60000", "--quiet"]
SPEC = DatasetSpec(seed=12, start=START, days=4, per_day=10, content_scale=0.01)


# --- the fake's delete statistics (adapt after the merge) -----------------------------------
def deletes_sent(fake: FakeVccServer) -> list[tuple[str, str | None]]:
    """Every deletion the fake received, in order: (guid, contentKey), or (guid, None) for a
    whole interaction (one per guid of a batch)."""
    return list(fake.stats.deletions)  # type: ignore[attr-defined]


def max_deletes_in_flight(fake: FakeVccServer) -> int:
    return int(fake.stats.max_deletes_in_flight)  # type: ignore[attr-defined]


def batches_sent(fake: FakeVccServer) -> list[list[str]]:
    """The guids of every batch deletion request, in order."""
    return [list(b) for b in fake.stats.delete_batches]  # type: ignore[attr-defined]


NO_DELETE_SCOPE = FakeConfig(grant_delete_scope=False)  # type: ignore[call-arg]
# ---------------------------------------------------------------------------------------------


def archived(fake: FakeVccServer, dest: Path) -> dict[tuple[str, str], Any]:
    done = run_cli(["content", *RANGE, "--dest", str(dest), "--quiet"], cli_env(fake))
    assert done.returncode == 0, done.stderr
    return dict(Manifest.load(dest / MANIFEST_NAME).entries)


def spoil(dest: Path, entries: dict[tuple[str, str], Any]) -> set[tuple[str, str]]:
    """Corrupt one archived file and remove another; their keys."""
    first, second = sorted(entries.values(), key=lambda e: e.path)[:2]
    path = dest / first.path
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    (dest / second.path).unlink()
    return {(first.guid, first.content_key), (second.guid, second.content_key)}


def test_deletes_exactly_the_verified_pieces_one_at_a_time(tmp_path: Path) -> None:
    with serve(generate(SPEC)) as fake:
        entries = archived(fake, tmp_path)
        kept = spoil(tmp_path, entries)
        fake.stats.reset()
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes", *FAST]
        done = run_cli(args, cli_env(fake))
        assert done.returncode == 1, done.stderr
        assert Counter(deletes_sent(fake)) == Counter(set(entries) - kept)
        assert max_deletes_in_flight(fake) == 1
        listed = set(re.findall(r"^kept: (\S+) (\S+) ", done.stdout, re.M))
        assert listed == kept
        state = replay(read_records(tmp_path / JOURNAL_NAME))
        assert set(state.gone) == set(entries) - kept and not state.pending
        assert {r.outcome for r in state.gone.values()} == {Outcome.DELETED}
        lines = [json.loads(x) for x in (tmp_path / JOURNAL_NAME).read_text().splitlines()]
        assert {"guid", "contentKey", "sha256", "time", "outcome"} <= set(lines[0])

        fake.stats.reset()
        again = run_cli(args, cli_env(fake))
        assert again.returncode == 1, again.stderr
        assert deletes_sent(fake) == []


def test_whole_interactions_go_in_batches(tmp_path: Path) -> None:
    with serve(generate(SPEC)) as fake:
        entries = archived(fake, tmp_path)
        fake.stats.reset()
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes", "--whole-interactions"]
        done = run_cli([*args, *FAST], cli_env(fake))
        assert done.returncode == 0, done.stderr
        batches = batches_sent(fake)
        assert batches and all(len(b) <= 1000 for b in batches)
        assert sorted(g for b in batches for g in b) == sorted({g for g, _ in entries})
        plan = run_cli(["purge", *RANGE, "--archive", str(tmp_path), *FAST], cli_env(fake))
        assert plan.returncode == 0 and "kept:" not in plan.stdout


def test_a_token_without_the_delete_scope_is_one_clear_error(tmp_path: Path) -> None:
    with serve(generate(SPEC)) as fake:
        archived(fake, tmp_path)
    with serve(generate(SPEC), NO_DELETE_SCOPE) as fake:
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes", *FAST]
        done = run_cli(args, cli_env(fake))
        assert deletes_sent(fake) == []
    assert done.returncode == 3, done.stderr
    assert "delete" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_kill_9_in_the_middle_then_rerun_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    with serve(generate(SPEC)) as fake:
        entries = archived(fake, tmp_path)
        fake.stats.reset()
        slow = ["--requests-per-minute", "60000", "--deletes-per-minute", "120", "--quiet"]
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes"]
        process = start_cli([*args, *slow], cli_env(fake))
        kill_9_when(process, lambda: len(replay(read_records(tmp_path / JOURNAL_NAME)).gone) >= 3)
        assert len(replay(read_records(tmp_path / JOURNAL_NAME)).gone) < len(entries)
        done = run_cli([*args, *FAST], cli_env(fake))
        assert done.returncode == 0, done.stderr
        sent = Counter(deletes_sent(fake))
        assert set(sent) == set(entries) and max(sent.values()) == 1
        assert set(replay(read_records(tmp_path / JOURNAL_NAME)).gone) == set(entries)


def test_demo(tmp_path: Path) -> None:
    narrow = ["--start", "2025-01-06T09:00:00Z", "--end", "2025-01-06T09:30:00Z"]
    env = cli_env(None)
    assert (
        run_cli(["content", "--demo", *narrow, "--dest", str(tmp_path), "-q"], env).returncode == 0
    )
    done = run_cli(
        ["purge", "--demo", *narrow, "--archive", str(tmp_path), "--yes", *FAST], env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "complete:" in done.stderr
