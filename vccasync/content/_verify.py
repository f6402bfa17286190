"""Re-hash archived files now: sha256 and size of each, off the event loop, a few at a time.

Hashing runs in threads (``hashlib`` releases the GIL on large updates, so two threads use two
cores) with chunked reads (memory does not grow with the file). A file that is not there is
reported as missing, not raised, and so is one whose path leads outside the archive once
symbolic links are followed (``outside``: never opened). ``mtime_ns`` lets a caller see that a
file changed after it was hashed without hashing it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from attrs import frozen

__all__ = [
    "CHUNK",
    "FileCheck",
    "check_file",
    "hash_file",
    "inside",
    "unchanged",
    "verify_files",
]

CHUNK: Final = 1 << 20


@frozen
class FileCheck:
    """What a file holds now; ``sha256`` and ``size`` are None when it is missing (or
    ``outside`` the archive)."""

    path: str
    sha256: str | None
    size: int | None
    mtime_ns: int | None = None
    outside: bool = False

    @property
    def missing(self) -> bool:
        return self.sha256 is None


def hash_file(path: Path) -> str:
    """The sha256 of a file, read in chunks of ``CHUNK`` bytes."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as f:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def inside(root: Path, rel: str) -> Path | None:
    """The real path of ``root / rel`` (symbolic links followed), or None when it is not
    under ``root``'s real path."""
    base = os.path.realpath(root)
    real = os.path.realpath(root / rel)
    return Path(real) if os.path.commonpath((base, real)) == base and real != base else None


def check_file(root: Path, rel: str) -> FileCheck:
    """Hash ``root / rel`` (a manifest's relative ``/`` path); missing when it is not a file,
    ``outside`` when it leads out of ``root``."""
    path = inside(root, rel)
    if path is None:
        return FileCheck(rel, None, None, outside=True)
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            return FileCheck(rel, None, None)
        sha = hash_file(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return FileCheck(rel, None, None)
    return FileCheck(rel, sha, before.st_size, before.st_mtime_ns)


def unchanged(root: Path, check: FileCheck) -> bool:
    """Whether the file still has the size and modification time it had when ``check`` was
    made, inside ``root`` (a cheap re-check just before acting on an older hash)."""
    path = inside(root, check.path)
    try:
        if path is None:
            return False
        now = os.stat(path)
    except OSError:
        return False
    return not check.missing and (now.st_size, now.st_mtime_ns) == (check.size, check.mtime_ns)


async def verify_files(
    root: Path,
    paths: Iterable[str],
    *,
    parallel: int = 2,
    on_done: Callable[[FileCheck], None] | None = None,
) -> dict[str, FileCheck]:
    """Hash every relative path under ``root``, ``parallel`` files at once, in threads.

    ``on_done`` sees each result as it comes (for progress). Errors other than a missing file
    (permissions, I/O) propagate as ``OSError``.
    """
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    gate = asyncio.Semaphore(parallel)
    results: dict[str, FileCheck] = {}

    async def one(rel: str) -> None:
        try:
            check = await asyncio.to_thread(check_file, root, rel)
        finally:
            gate.release()
        results[rel] = check
        if on_done is not None:
            on_done(check)

    try:
        async with asyncio.TaskGroup() as group:
            for rel in dict.fromkeys(paths):
                await gate.acquire()  # bounded: no task per file of a million-file archive
                group.create_task(one(rel))
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return results
