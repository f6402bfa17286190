"""A long ``--follow`` stays flat: 60 back-to-back passes with content (the benchmark's loop,
``python -m benchmarks.longrun``), open descriptors and asyncio tasks the same after pass 60
as after pass 10, resident memory within a generous bound."""

from __future__ import annotations

from pathlib import Path

from benchmarks.longrun import follow

RSS_SLACK_KIB = 8 * 1024  # allocator noise and caches, far below a leak of 50 passes


async def test_sixty_follow_passes_leave_no_fds_tasks_or_memory_behind(tmp_path: Path) -> None:
    samples, changes = await follow(60, tmp_path, {10, 60})
    assert changes > 60  # the data kept changing: the passes did work
    at10, at60 = samples
    assert (at10.passes, at60.passes) == (10, 60)
    assert at60.fds <= at10.fds
    assert at60.tasks <= at10.tasks
    assert at60.rss_kib - at10.rss_kib < RSS_SLACK_KIB
