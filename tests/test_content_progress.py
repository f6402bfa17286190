"""The progress display of ``vccasync content``, without a network."""

from __future__ import annotations

import io
import time

from vccasync._http.session import SessionStats
from vccasync.cli._content_progress import ContentTally
from vccasync.cli._progress import display_for
from vccasync.content._bulk import BulkProgress

from .cli_helpers import Terminal


def test_content_progress_displays() -> None:
    progress = BulkProgress(files_found=5, bytes_found=5_000_000, files_done=2, files_failed=1)
    progress.bytes_done = progress.bytes_fetched = 2_000_000
    tally = ContentTally(progress, SessionStats(requests=7, retries=1))
    assert "3/5+ files (2 downloaded, 0 already complete, 1 failed)" in tally.line()
    terminal = Terminal()
    with display_for(tally, terminal, quiet=False):  # rich bars, on a "terminal"
        pass
    shown = terminal.getvalue()
    assert "3/5+ files" in shown and "2.0/5.0+ MB" in shown and "7 requests" in shown
    piped = io.StringIO()
    with display_for(tally, piped, quiet=False, interval=0.01):
        time.sleep(0.05)
    assert piped.getvalue().startswith("vccasync: 3/5+ files")
