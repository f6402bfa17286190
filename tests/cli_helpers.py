"""Running ``vccasync`` as a subprocess against a fake the test controls, reading its outputs."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from vccasync.distributed._accounts import env_prefix
from vccasync.fake import FakeVccServer
from vccasync.stores._jsonl import checkpoint_path

CLI = [sys.executable, "-m", "vccasync.cli"]


class Terminal(io.StringIO):
    """A text stream that says it is a terminal (so progress is drawn with rich)."""

    def isatty(self) -> bool:
        return True


def cli_env(
    fake: FakeVccServer | None, *, account: str | None = None, **overrides: str
) -> dict[str, str]:
    """The environment of a CLI run: no inherited ``VCC_*``, the fake's address and secrets
    (as ``VCC_<ACCOUNT>_*`` for a named ``account``, as run-task reads them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCC_")}
    if fake is not None:
        prefix = env_prefix(account) if account else "VCC_"
        env.update(
            {
                prefix + "CLIENT_ID": fake.client_id,
                prefix + "CLIENT_SECRET": fake.client_secret,
                prefix + "API_URL": fake.api_url,
                prefix + "AUTH_URL": fake.auth_url,
            }
        )
    env.update(overrides)
    return env


def run_cli(
    args: Sequence[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``vccasync ARGS`` to its end; text stdout/stderr."""
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def start_cli(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``vccasync ARGS`` without waiting (stdout discarded, stderr captured)."""
    return subprocess.Popen(
        [*CLI, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def kill_9_when(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 60
) -> None:
    """Poll ``ready`` until it holds (the run must still be going), then ``kill -9`` the run."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run ended before the kill moment"
        assert time.monotonic() < deadline, "the kill moment never came"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    if process.stderr is not None:
        process.stderr.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL output, decoded."""
    with path.open("rb") as lines:
        return [json.loads(line) for line in lines]


def read_sqlite(path: Path) -> list[dict[str, Any]]:
    """The ``json`` column of every interaction, in ``start`` order."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT json FROM interactions ORDER BY start, rowid").fetchall()
    return [json.loads(row[0]) for row in rows]


def chronological(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the API's order, (start instant, guid); duplicates stay, to be caught."""
    return sorted(rows, key=lambda row: (datetime.fromisoformat(row["start"]), row["guid"]))


def read_output(path: Path) -> list[dict[str, Any]]:
    """The interactions of a JSONL or SQLite output, in the API's order (windows are written
    as their pages arrive)."""
    return chronological(read_jsonl(path) if path.suffix == ".jsonl" else read_sqlite(path))


def stored_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint of an output as stored (None when there is none yet)."""
    try:
        if path.suffix == ".jsonl":
            data: dict[str, Any] = json.loads(checkpoint_path(path).read_bytes())
            return data
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2) as db:
            row = db.execute("SELECT state FROM vccasync_checkpoint").fetchone()
        return None if row is None else dict(json.loads(row[0]))
    except (OSError, ValueError, sqlite3.Error):
        return None


def held(fake: FakeVccServer, process: subprocess.Popen[bytes]) -> None:
    """Wait until the fake holds a request of ``process``."""
    for _ in range(600):
        if fake.gate.wait_held(0.1):
            return
        if process.poll() is not None:
            raise AssertionError(f"the first run ended: {process.communicate()[1]!r}")
    raise AssertionError("the first run never reached the gate")
