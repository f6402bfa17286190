"""Re-hashing archive files: sha256 and size, missing files, bounded threads, later changes."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from vccasync.content import _verify as verify
from vccasync.content._verify import FileCheck, check_file, hash_file, unchanged, verify_files


def test_hash_and_size_of_files(tmp_path: Path) -> None:
    data = os.urandom(verify.CHUNK * 2 + 123)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "big.bin").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    assert hash_file(tmp_path / "a" / "big.bin") == hashlib.sha256(data).hexdigest()
    check = check_file(tmp_path, "a/big.bin")
    assert (check.sha256, check.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert check_file(tmp_path, "empty").sha256 == hashlib.sha256(b"").hexdigest()


def test_missing_files_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_bytes(b"x")
    for rel in ("absent", "dir", "file/below", "no/such/dir/x"):
        check = check_file(tmp_path, rel)
        assert check.missing and check.size is None, rel


async def test_verify_files_runs_a_bounded_number_of_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        (tmp_path / f"f{i}").write_bytes(bytes([i]) * (i + 1))
    busy, peak, lock = 0, 0, threading.Lock()
    real = verify.check_file

    def counting(root: Path, rel: str) -> FileCheck:
        nonlocal busy, peak
        with lock:
            busy += 1
            peak = max(peak, busy)
        try:
            return real(root, rel)
        finally:
            with lock:
                busy -= 1

    monkeypatch.setattr(verify, "check_file", counting)
    seen: list[str] = []
    paths = [f"f{i}" for i in range(12)] + ["f0", "gone"]
    results = await verify_files(tmp_path, paths, parallel=3, on_done=lambda c: seen.append(c.path))
    assert peak <= 3
    assert sorted(seen) == sorted(set(paths))
    assert results["f5"] == real(tmp_path, "f5")
    assert results["gone"].missing
    with pytest.raises(ValueError):
        await verify_files(tmp_path, paths, parallel=0)


def test_unchanged_sees_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    check = check_file(tmp_path, "f")
    assert unchanged(tmp_path, check)
    path.write_bytes(b"abcd")
    assert not unchanged(tmp_path, check)
    path.unlink()
    assert not unchanged(tmp_path, check)
    assert not unchanged(tmp_path, FileCheck("f", None, None))


def test_a_path_that_resolves_outside_the_root_is_never_opened(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "archive", tmp_path / "elsewhere"
    (root / "g").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "secret.bin").write_bytes(b"x" * 10)
    (root / "g" / "link.bin").symlink_to(elsewhere / "secret.bin")
    (root / "linked-dir").symlink_to(elsewhere, target_is_directory=True)
    (root / "g" / "inner.bin").write_bytes(b"y")
    (root / "g" / "alias.bin").symlink_to(root / "g" / "inner.bin")
    for rel in ("g/link.bin", "linked-dir/secret.bin", "../elsewhere/secret.bin", str(elsewhere)):
        check = check_file(root, rel)
        assert (check.outside, check.sha256, check.missing) == (True, None, True), rel
    inside = check_file(root, "g/alias.bin")  # a link that stays inside is followed
    assert not inside.outside and inside.sha256 == hashlib.sha256(b"y").hexdigest()
    assert unchanged(root, inside)
    (root / "g" / "alias.bin").unlink()
    (root / "g" / "alias.bin").symlink_to(elsewhere / "secret.bin")
    secret = os.stat(elsewhere / "secret.bin")  # same size and time: only the place differs
    swapped = FileCheck("g/alias.bin", "a" * 64, secret.st_size, secret.st_mtime_ns)
    assert not unchanged(root, swapped)
