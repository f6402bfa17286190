"""Retention: GB/s of re-hashing an archive (against hashlib on one core), and deletions a
minute achieved by a purge (against its budget).

Run: ``python -m benchmarks.retention [--gb 1] [--file-mb 8] [--threads 1,2,4]``, or
``python -m benchmarks.retention --deletes [--budgets 16,120] [--seconds 20]``, or
``python -m benchmarks.retention --purge [--interactions 200] [--per 5] [--scale 20]
[--latency 0.2] [--whole]``.

Writes ``--gb`` of files of ``--file-mb`` each (random bytes) into a temporary directory, then
hashes them all with :func:`vccasync.content._verify.verify_files` at each thread count, best of
``--repeat``. The files were just written, so they are read from the page cache: the figure is
the hashing path (threads, chunked reads), not the disk. The ideal is ``hashlib.sha256`` over
the same bytes in memory on one core, times the threads that can run at once (at most the
cores); ``sha256sum`` over the same files is shown too when installed.

``--deletes``: for each budget (deletions a minute), the fake API (in-process on 127.0.0.1,
enforcing that budget as its own delete limit) serves a fresh dataset; ``download_all``
archives the first interactions (about ``--seconds`` worth of deletions at the budget), then
:func:`vccasync.content._purge.purge` verifies and deletes them one piece at a time, journal
and all, with the client at that deletion budget and its default request budget. The first
deletion goes at once, so the achieved rate is (deletions - 1) over the time from the first
deletion's answer to the last's; the fake's 429s are counted (there should be none).

``--purge``: the cost of the checks. ``--interactions`` interactions of ``--per`` pieces each
(the fake's generated pieces, padded with attachments) are archived, then one purge deletes
them all (``--whole``: whole interactions), with the client at the default budgets (160
requests, 16 deletions a minute) times ``--scale`` and the fake enforcing the same limits; the
fake answers a ``GET /interactions/{guid}`` after ``--latency`` seconds, and the purge's bound
(``max_check_age``, 10 s) is divided by ``--scale`` as well: the run is the default one,
``--scale`` times faster (the batches of ``--whole`` have their default sizes). Printed: the
requests the fake saw by kind, the wall time and that time times ``--scale`` (the estimate at
the default budgets), and the window of each deletion: the time from the answer it relied on
(its own GET, else the search that listed its interaction) to the DELETE's arrival, as the
fake saw both (raw: the local part of it, the journal's fsync and the event loop, does not
scale; with ``--whole`` it is mostly the batch's fetching, which does).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vccasync import VccClient
from vccasync._deletes import DeleteFailure, DeleteOutcome
from vccasync._models import Interaction
from vccasync.content._purge import purge
from vccasync.content._verify import verify_files
from vccasync.fake import DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake._deletes import DeleteConfig

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


START = datetime(2025, 1, 6, tzinfo=UTC)


class Timed:
    """The client, with the time each content deletion was answered."""

    def __init__(self, vcc: VccClient) -> None:
        self.vcc, self.answered = vcc, list[float]()

    async def interaction(self, guid: str) -> Interaction:
        return await self.vcc.interaction(guid)

    async def reserve_deletion(self) -> None:
        await self.vcc.reserve_deletion()

    async def delete_content(self, guid: str, content_key: str, **guard: Any) -> DeleteOutcome:
        outcome = await self.vcc.delete_content(guid, content_key, **guard)
        self.answered.append(time.perf_counter())
        return outcome

    async def delete_interactions(self, guids: Iterable[str], **guard: Any) -> list[DeleteFailure]:
        return await self.vcc.delete_interactions(guids, **guard)


async def listed(interactions: list[Interaction]) -> AsyncIterator[Interaction]:
    for interaction in interactions:
        yield interaction


async def deletion_rate(budget: float, pieces: int, root: Path) -> tuple[int, float, int]:
    """Deletions, achieved deletions a minute, and the fake's 429s, of a purge of about
    ``pieces`` pieces at ``budget`` deletions a minute."""
    spec = DatasetSpec(seed=3, start=START, days=1, per_day=400, content_scale=0.001)
    config = FakeConfig(deletes=DeleteConfig(per_minute=int(budget)))
    async with FakeVccServer(generate(spec), config) as fake:
        options = {
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "api_url": fake.api_url,
            "auth_url": fake.auth_url,
        }
        chosen: list[Interaction] = []
        async with VccClient(**options, requests_per_minute=None) as vcc:
            async for interaction in vcc.interactions(START, START + timedelta(days=1)):
                if sum(len(i.content) for i in chosen) >= pieces:
                    break
                chosen.append(interaction)
            done = await vcc.download_all(listed(chosen), root)
            assert done.files_failed == 0, done.failures[:3]
        async with VccClient(**options, deletes_per_minute=budget) as vcc:
            timed = Timed(vcc)
            progress = await purge(timed, listed(chosen), root, execute=True)
        assert progress.complete, progress.kept[:3] or progress.failures[:3]
        answered = timed.answered
        rate = (len(answered) - 1) / (answered[-1] - answered[0]) * 60
        return len(answered), rate, fake.stats.deletes.rate_limited


def deletes_main(budgets: list[float], seconds: float) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count() or 1} CPUs; fake API in-process")
    for budget in budgets:
        with tempfile.TemporaryDirectory(prefix="vccasync-purge-") as tmp:
            wanted = max(3, int(budget * seconds / 60) + 1)
            count, rate, refused = asyncio.run(deletion_rate(budget, wanted, Path(tmp)))
        print(
            f"budget {budget:g}/min: {count} deletions, {rate:.2f}/min achieved,"
            f" {rate / budget:.3f} of the budget; {refused} refused (429) by the fake"
        )


def _padded(per: int) -> None:
    """Every generated interaction with content gets attachments up to ``per`` pieces (this
    process only: the benchmark's dataset)."""
    from vccasync.fake import _materialise as materialise

    made = materialise._random_content

    def padded(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        out = made(*args, **kwargs)
        ms = args[2]
        extra = [f"pad{n}" for n in range(max(0, per - len(out)))]
        return out + materialise._extra_content(extra, ms)

    materialise._random_content = padded  # type: ignore[assignment]


async def purge_cost(
    interactions: int, per: int, scale: float, latency: float, whole: bool, root: Path
) -> dict[str, Any]:
    """Archive ``interactions`` interactions, purge them; what it took."""
    _padded(per)
    spec = DatasetSpec(seed=3, start=START, days=1, per_day=interactions * 2, content_scale=0.001)
    requests, deletes = 160 * scale, 16 * scale
    config = FakeConfig(
        page_latency=latency / scale,
        rate_limit_per_minute=int(requests),
        deletes=DeleteConfig(per_minute=int(deletes)),
    )
    async with FakeVccServer(generate(spec), config) as fake:
        options: dict[str, Any] = {
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "api_url": fake.api_url,
            "auth_url": fake.auth_url,
        }
        chosen: list[Interaction] = []
        async with VccClient(**options, requests_per_minute=int(requests)) as vcc:
            async for interaction in vcc.interactions(START, START + timedelta(days=1)):
                if len(interaction.content) == per and not interaction.guid.startswith("0000"):
                    chosen.append(interaction)
                if len(chosen) == interactions:
                    break
            done = await vcc.download_all(listed(chosen), root)
            assert done.files_failed == 0, done.failures[:3]
        listed_at: dict[str, float] = {}

        async def searched() -> AsyncIterator[Interaction]:
            for interaction in chosen:  # as the search page that listed them, answered now
                listed_at[interaction.guid] = time.monotonic()
                yield interaction

        await asyncio.sleep(60 / requests)  # the archiving's budget is its own client's
        fake.stats.reset()
        async with VccClient(
            **options, requests_per_minute=requests, deletes_per_minute=deletes
        ) as vcc:
            await vcc.session.tokens.token()
            bound: dict[str, Any] = {}
            accepts = inspect.signature(purge).parameters
            if "max_check_age" in accepts:  # the bound, scaled too
                bound = {"max_check_age": 10 / scale, "requests_per_minute": requests}
            elif "max_search_age" in accepts:  # before it: the search trusted for 5 minutes
                bound = {"max_search_age": 300 / scale}
            began = time.perf_counter()
            progress = await purge(vcc, searched(), root, execute=True, whole=whole, **bound)
            seconds = time.perf_counter() - began
        assert progress.complete, progress.kept[:3] or progress.failures[:3]
        return {
            "pieces": progress.deleted + progress.already_gone,
            "seconds": seconds,
            "windows": _windows(fake.stats.records, listed_at),
            "stats": fake.stats,
        }


def _windows(records: Iterable[Any], listed_at: dict[str, float]) -> list[float]:
    """Per deletion (a batch counts once, by the oldest answer since the last batch): seconds
    from the answer it relied on to its arrival (a purge sends no ``DELETE /interactions/
    {guid}``, so that path is always a GET)."""
    answered = dict(listed_at)
    since_batch: list[float] = []
    out = []
    for record in records:
        parts = record.path.split("/")
        if record.path.endswith("/delete-batch"):
            out.append(record.time - min(since_batch or listed_at.values()))
            since_batch = []
        elif len(parts) >= 2 and parts[-2] == "interactions" and record.status in (200, 404):
            answered[parts[-1]] = record.time
            since_batch.append(record.time)
        elif len(parts) >= 4 and parts[-2] == "content" and parts[-3] in answered:
            out.append(record.time - answered[parts[-3]])
    return out


def purge_main(interactions: int, per: int, scale: float, latency: float, whole: bool) -> None:
    mode = "whole interactions" if whole else "one piece at a time"
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count() or 1} CPUs; fake API in-process;"
        f" {interactions} interactions x {per} pieces, {mode}; budgets 160 requests and 16"
        f" deletions a minute x {scale:g}; a GET answered in {latency * 1000:g} ms / {scale:g}"
    )
    with tempfile.TemporaryDirectory(prefix="vccasync-purge-") as tmp:
        out = asyncio.run(purge_cost(interactions, per, scale, latency, whole, Path(tmp)))
    stats, windows = out["stats"], sorted(out["windows"])
    other = stats.requests - stats.get_requests - stats.delete_requests - stats.search_requests
    print(
        f"{out['pieces']} pieces deleted: {stats.requests} requests ({stats.get_requests} GET"
        f" /interactions/{{guid}}, {stats.delete_requests} deletions, {other} other),"
        f" {stats.rate_limited + stats.deletes.rate_limited} refused (429);"
        f" {out['seconds']:.1f} s, x {scale:g} = {out['seconds'] * scale / 60:.1f} min at the"
        " default budgets"
    )
    if windows:
        median = windows[len(windows) // 2]
        print(
            f"answer relied on -> DELETE arrival: median {median * 1000:.1f} ms, max"
            f" {windows[-1] * 1000:.1f} ms ({len(windows)} deletions)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="archive size (default 1)")
    parser.add_argument("--file-mb", type=float, default=8.0, help="file size (default 8)")
    parser.add_argument("--threads", default="1,2,4", help="thread counts (default 1,2,4)")
    parser.add_argument("--repeat", type=int, default=3, help="best of (default 3)")
    parser.add_argument("--deletes", action="store_true", help="measure deletions instead")
    parser.add_argument("--budgets", default="16,120", help="deletions/min (default 16,120)")
    parser.add_argument("--seconds", type=float, default=20.0, help="per budget (default 20)")
    parser.add_argument("--purge", action="store_true", help="measure what the checks cost")
    parser.add_argument("--interactions", type=int, default=200, help="to purge (default 200)")
    parser.add_argument("--per", type=int, default=5, help="pieces each (default 5)")
    parser.add_argument("--scale", type=float, default=20.0, help="budgets x (default 20)")
    parser.add_argument("--latency", type=float, default=0.2, help="s a GET (default 0.2)")
    parser.add_argument("--whole", action="store_true", help="whole interactions")
    args = parser.parse_args(argv)
    if args.purge:
        purge_main(args.interactions, args.per, args.scale, args.latency, args.whole)
        return
    if args.deletes:
        deletes_main([float(b) for b in args.budgets.split(",")], args.seconds)
        return
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
