"""Content downloads seen from outside: the files a range should give, the files on disk."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from vccasync._instants import parse_instant
from vccasync.content._manifest import MANIFEST_NAME
from vccasync.content._paths import content_path
from vccasync.fake import Dataset
from vccasync.fake._content import content_sha256


def expected_files(
    dataset: Dataset, start: datetime, end: datetime, types: set[str] | None = None
) -> dict[Path, str]:
    """Relative path -> sha256 of every piece of content a search of ``start`` to ``end``
    (both included) finds, of ``types`` or all (ground truth)."""
    out: dict[Path, str] = {}
    for item in dataset.expected(start, end):
        for c in item["content"]:
            if types is None or c["type"] in types:
                path = content_path(
                    Path(), parse_instant(item["start"]), item["guid"], c["contentKey"],
                    c["contentType"],
                )  # fmt: skip
                assert path not in out, "two keys map to one file"
                out[path] = content_sha256(item["guid"], c["contentKey"], c["contentLength"])
    return out


def tree(root: Path) -> dict[Path, str]:
    """Relative path -> sha256 of every file under ``root`` but the manifest."""
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    }
