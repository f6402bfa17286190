"""``vccasync purge`` as a Unix tool and as a demo: output into a closed pipe, the demo run twice
on one archive, and help that states what the docs say (the check's bound, the manifest's
version fields)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from vccasync._http.session import SessionStats
from vccasync.cli import build_parser
from vccasync.cli._purge_progress import PurgeTally
from vccasync.content._journal import JOURNAL_NAME, read_records, replay
from vccasync.content._manifest import MANIFEST_NAME, Manifest
from vccasync.content._purge import PurgeProgress
from vccasync.fake import generate
from vccasync.fake import running_in_thread as serve

from .cli_helpers import CLI, cli_env, run_cli
from .test_cli_help import command_help, option_help
from .test_cli_purge_delete import FAST, RANGE, SPEC, archived

NARROW = ["--start", "2025-01-06T09:00:00Z", "--end", "2025-01-06T09:20:00Z"]


def demo_archive(dest: Path) -> set[tuple[str, str]]:
    done = run_cli(["content", "--demo", *NARROW, "--dest", str(dest), "-q"], cli_env(None))
    assert done.returncode == 0, done.stderr
    return set(Manifest.load(dest / MANIFEST_NAME).entries)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    with serve(generate(SPEC)) as fake:
        entries = archived(fake, tmp_path)
        args = ["purge", *RANGE, "--archive", str(tmp_path), "--yes", *FAST]
        # stdout's reader is gone before anything is printed (as `| head -0` would be)
        reader, writer = os.pipe()
        os.close(reader)
        with subprocess.Popen(
            [*CLI, *args], env=cli_env(fake), stdout=writer, stderr=subprocess.PIPE
        ) as process:
            os.close(writer)
            _, stderr = process.communicate(timeout=120)
    text = stderr.decode()
    assert process.returncode == 0, text  # every deletion done: the pipe is no failure
    assert "Broken pipe" not in text and "Traceback" not in text and "error" not in text
    assert "complete:" in text
    assert set(replay(read_records(tmp_path / JOURNAL_NAME)).gone) == entries


def test_the_demo_remembers_what_it_deleted(tmp_path: Path) -> None:
    entries = demo_archive(tmp_path)
    env = cli_env(None)
    base = ["purge", "--demo", *NARROW, "--archive", str(tmp_path)]
    first = run_cli([*base, "--yes", "-q"], env)
    assert first.returncode == 0, first.stderr
    records = read_records(tmp_path / JOURNAL_NAME)

    again = run_cli(base, env)  # a second demo on the same archive
    assert again.returncode == 0, again.stderr
    assert "deletions/min" not in again.stderr  # no rate of nothing (never "0.0")
    lines = [line for line in again.stdout.splitlines() if re.match(r"plan: \w+: ", line)]
    assert lines and all(" 0 to delete (0 B)," in line for line in lines), again.stdout
    already = sum(int(m[1]) for m in re.finditer(r"(\d+) already deleted", again.stdout))
    assert already == len(entries)
    second = run_cli([*base, "--yes", "-q"], env)
    assert second.returncode == 0, second.stderr
    assert read_records(tmp_path / JOURNAL_NAME) == records  # nothing sent, nothing written


def test_purge_help_states_the_bound_in_seconds() -> None:
    text = option_help("purge", "--max-check-age")
    assert "seconds" in text and "10" in text
    assert "--max-check-age" in command_help("purge")
    assert "seconds (default 10)" in command_help("purge")
    args = build_parser().parse_args(["purge", *NARROW, "--archive", "x"])
    assert args.max_check_age == 10.0


def test_content_help_lists_the_version_fields() -> None:
    text = command_help("content")
    for name in ("lastModified", "contentLength", "etag", "httpLastModified"):
        assert name in text, name
    assert "skips a complete file only when its version matches" in text


def test_the_summary_shows_the_checks_and_the_batch_sizes() -> None:
    now = [100.0]
    progress = PurgeProgress(deleted=26, checks=27, rechecks=1, oldest_check=4.25)
    progress.batch_sizes = [13, 13]
    tally = PurgeTally(progress, SessionStats(), clock=lambda: now[0])
    now[0] += 60
    line = tally.summary("complete")
    assert "27 checks (1 again), the oldest 4.25s old when its deletion left (bound 10s)" in line
    assert "2 batches of 13, 13" in line and "(26.0 deletions/min)" in line
    idle = PurgeTally(PurgeProgress(), SessionStats(), clock=lambda: now[0]).summary("plan")
    assert "deletions/min" not in idle and "check" not in idle
