"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temp folder, loopback only.

``PgServer`` runs ``initdb`` and ``pg_ctl`` on a free 127.0.0.1 port with the unix socket in its
own folder and trust authentication (nothing else can reach it). initdb and postgres refuse to
run as root: under root they run as the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PgServer", "find_bindir"]

SETTINGS = {  # a test server: durability off, speed on (benchmarks say what they use)
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` with a server, else initdb on PATH, else None."""
    found = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temp folder; ``start()`` / ``stop()``; ``dsn(database)``."""

    def __init__(self, bindir: Path, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir
        self.settings = {**SETTINGS, **(settings or {})}
        self.root = Path(tempfile.mkdtemp(prefix="vccasync-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    def _check(self, done: subprocess.CompletedProcess[str], what: str) -> None:
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr}{tail}")

    def start(self) -> None:
        """initdb (trust auth, UTF-8) and start the server on a free loopback port."""
        done = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        self._check(done, "initdb")
        for _ in range(5):  # a free port can be taken between probing and binding
            self.port = _free_port()
            options = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
            done = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                "-t", "60", "-o", f"-p {self.port} -k {self.root} {options}", "start",
            )  # fmt: skip
            if done.returncode == 0:
                return
        self._check(done, "pg_ctl start")

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
