"""Verifying an archive before a purge: GB/s of re-hashing, against hashlib on one core.

Run: ``python -m benchmarks.retention [--gb 1] [--file-mb 8] [--threads 1,2,4]``.

Writes ``--gb`` of files of ``--file-mb`` each (random bytes) into a temporary directory, then
hashes them all with :func:`vccasync.content.verify.verify_files` at each thread count, best of
``--repeat``. The files were just written, so they are read from the page cache: the figure is
the hashing path (threads, chunked reads), not the disk. The ideal is ``hashlib.sha256`` over
the same bytes in memory on one core, times the threads that can run at once (at most the
cores); ``sha256sum`` over the same files is shown too when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vccasync.content.verify import verify_files

MB = 1_000_000
GB = 1_000_000_000


def make_archive(root: Path, total: int, file_size: int) -> list[str]:
    block = os.urandom(file_size)
    names = []
    for i in range(max(1, total // file_size)):
        name = f"f{i:05}.bin"
        (root / name).write_bytes(block[i % 97 :] + block[: i % 97])  # distinct files
        names.append(name)
    return names


def hashlib_rate(file_size: int, repeat: int) -> float:
    """Bytes a second of sha256 on one core over an in-memory buffer."""
    data = os.urandom(file_size)
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(max(1, 256 * MB // file_size)):
            hashlib.sha256(data).digest()
        best = min(best, time.perf_counter() - began)
    return max(1, 256 * MB // file_size) * file_size / best


def sha256sum_rate(root: Path, names: list[str], total: int) -> float | None:
    tool = shutil.which("sha256sum")
    if tool is None:
        return None
    began = time.perf_counter()
    subprocess.run([tool, *names], cwd=root, check=True, stdout=subprocess.DEVNULL)
    return total / (time.perf_counter() - began)


async def verify_rate(root: Path, names: list[str], total: int, threads: int) -> float:
    began = time.perf_counter()
    checks = await verify_files(root, names, parallel=threads)
    seconds = time.perf_counter() - began
    assert all(not c.missing for c in checks.values())
    return total / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="archive size (default 1)")
    parser.add_argument("--file-mb", type=float, default=8.0, help="file size (default 8)")
    parser.add_argument("--threads", default="1,2,4", help="thread counts (default 1,2,4)")
    parser.add_argument("--repeat", type=int, default=3, help="best of (default 3)")
    args = parser.parse_args(argv)
    file_size = int(args.file_mb * MB)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="vccasync-verify-") as tmp:
        root = Path(tmp)
        names = make_archive(root, int(args.gb * GB), file_size)
        total = len(names) * file_size
        one_core = hashlib_rate(file_size, args.repeat)
        print(
            f"python {sys.version.split()[0]}, {cores} CPUs; {len(names)} files of"
            f" {args.file_mb:g} MB, {total / GB:.2f} GB (page cache)"
        )
        print(f"hashlib.sha256 in memory, one core: {one_core / GB:.2f} GB/s")
        tool = sha256sum_rate(root, names, total)
        if tool is not None:
            print(f"sha256sum, one process: {tool / GB:.2f} GB/s")
        for threads in (int(t) for t in args.threads.split(",")):
            best = max(
                asyncio.run(verify_rate(root, names, total, threads)) for _ in range(args.repeat)
            )
            ideal = one_core * min(threads, cores)
            print(
                f"verify_files, {threads} threads: {best / GB:.2f} GB/s, {best / ideal:.2f} of"
                f" the ideal ({ideal / GB:.2f} GB/s); {GB / best:.1f} s a GB,"
                f" {100 * GB / best / 60:.1f} min for 100 GB"
            )


if __name__ == "__main__":
    main()
