"""Content download on the fake API: throughput (MB/s, files/s) and memory on a large file.

Run: ``python benchmarks/download.py [--files-days 2] [--large-mb 200] [--workers 8]``.

The fake API runs in its own process (so the client's CPU and RSS are its own) on 127.0.0.1,
without a rate limit and with the client's budget off: the figures are the client's ceiling
(plus the fake's cost of making bytes). Against the real API the documented budget of 160
requests a minute caps a bulk download at 2.7 files/s, whatever the link.

1. many files: ``download_all`` of every piece of content of the range, ``--workers`` at once;
2. one large file (``--large-mb``) with ``VccClient.download``, peak RSS sampled every 10 ms,
   next to the same for a file a tenth of the size: equal peaks mean memory does not grow with
   the file.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vccasync import VccClient
from vccasync.fake import DatasetSpec, FakeVccServer, generate

START = datetime(2025, 1, 6, tzinfo=UTC)
MB = 1_000_000
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _serve(spec: DatasetSpec, ports: Any) -> None:
    async def main() -> None:
        async with FakeVccServer(generate(spec)) as server:
            ports.put(server.port)
            await asyncio.Event().wait()

    asyncio.run(main())


class Fake:
    """The fake API in a child process."""

    def __init__(self, spec: DatasetSpec) -> None:
        ctx = mp.get_context("spawn")
        ports = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(spec, ports), daemon=True)
        self.process.start()
        self.url = f"http://127.0.0.1:{ports.get(timeout=60)}"

    def client(self, **options: Any) -> VccClient:
        return VccClient(
            client_id="demo-client",
            client_secret="demo-secret",
            api_url=f"{self.url}/interaction-content",
            auth_url=f"{self.url}/auth",
            requests_per_minute=None,
            **options,
        )

    def close(self) -> None:
        self.process.terminate()
        self.process.join()


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


async def sample_peak(stop: asyncio.Event) -> int:
    peak = rss()
    while not stop.is_set():
        peak = max(peak, rss())
        await asyncio.sleep(0.01)
    return max(peak, rss())


async def many_files(days: int, scale: float, workers: int, dest: Path) -> None:
    spec = DatasetSpec(seed=1, start=START, days=days, per_day=300, content_scale=scale)
    fake = Fake(spec)
    try:
        async with fake.client(concurrency=4) as vcc:
            cpu0, began = time.process_time(), time.perf_counter()
            search = vcc.interactions(START, START + timedelta(days=days))
            progress = await vcc.download_all(search, dest, workers=workers)
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu0
            requests = vcc.stats.requests
    finally:
        fake.close()
    assert progress.files_failed == 0, progress.failures[:3]
    print(
        f"many files: {progress.files_done} files, {progress.bytes_fetched / MB:.1f} MB"
        f" in {wall:.2f}s with {workers} workers -> {progress.bytes_fetched / MB / wall:.1f} MB/s,"
        f" {progress.files_done / wall:.0f} files/s; client CPU {cpu:.2f}s"
        f" ({cpu / wall:.0%} of one core), {requests} requests"
    )


async def one_large(target_mb: float, dest: Path) -> None:
    # audio is 16 kB a second at scale 1; pick the longest recording and scale it to target_mb
    probe = generate(DatasetSpec(seed=2, start=START, days=1, per_day=40))
    guid, piece = max(
        ((it["guid"], c) for it in probe.visible() for c in it["content"]),
        key=lambda p: int(p[1]["contentLength"]),
    )
    for mb in (target_mb / 10, target_mb):
        scale = mb * MB / piece["contentLength"]
        spec = DatasetSpec(seed=2, start=START, days=1, per_day=40, content_scale=scale)
        length = max(1, int(piece["contentLength"] * scale))
        fake = Fake(spec)
        try:
            async with fake.client() as vcc:
                before = rss()
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample_peak(stop))
                began = time.perf_counter()
                result = await vcc.download(
                    guid, piece["contentKey"], dest / f"large-{mb:.0f}", expected_length=length
                )
                wall = time.perf_counter() - began
                stop.set()
                peak = await sampler
        finally:
            fake.close()
        assert result.size == length
        print(
            f"one file of {length / MB:.0f} MB: {wall:.2f}s -> {length / MB / wall:.0f} MB/s;"
            f" RSS {before / MB:.1f} MB before, peak {peak / MB:.1f} MB during"
            f" (+{(peak - before) / MB:.1f} MB)"
        )
        (dest / f"large-{mb:.0f}").unlink()


async def main(args: argparse.Namespace) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        await many_files(args.files_days, args.scale, args.workers, Path(tmp) / "many")
        await one_large(args.large_mb, Path(tmp))
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
    print(f"client process max RSS over the whole run: {max_rss:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files-days", type=int, default=2, help="days of 300 interactions")
    parser.add_argument("--scale", type=float, default=0.05, help="content size scale")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--large-mb", type=float, default=200)
    parser.add_argument("--tmp", default=None, help="where to write (default: system temp)")
    asyncio.run(main(parser.parse_args()))
