"""``VccClient.download`` against the fake API on loopback: bytes, resume, faults, redirects."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses
from yarl import URL

from vccasync import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    ResponseValidationError,
    VccClient,
)
from vccasync.content._download import content_url_path, part_path, sidecar_path
from vccasync.fake import Dataset, DatasetSpec, FakeConfig, FakeVccServer, FaultConfig, generate
from vccasync.fake._content import BLOCK_SIZE, content_bytes, content_sha256, validators
from vccasync.fake._paging import parse_instant

from .conftest import API, FAST, client_for, token_answer

SPEC = DatasetSpec(
    seed=11, start=datetime(2025, 2, 3, tzinfo=UTC), days=8, per_day=6, content_scale=0.02
)
FAULTS = FaultConfig(
    rate=0.3,
    kinds=("500", "502-html", "drop", "truncate", "stall", "429-bare", "bad-json"),
    seed=5,
    stall_seconds=0.05,
)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(SPEC)


def pieces(dataset: Dataset) -> list[tuple[str, dict[str, Any]]]:
    return [(it["guid"], c) for it in dataset.visible() for c in it["content"]]


def biggest(dataset: Dataset) -> tuple[str, dict[str, Any]]:
    """The guid and the piece of the largest piece of content."""
    return max(pieces(dataset), key=lambda p: int(p[1]["contentLength"]))


def big_piece(dataset: Dataset) -> tuple[str, str, int]:
    """The guid, content key and length of the largest piece of content."""
    guid, piece = biggest(dataset)
    return guid, piece["contentKey"], piece["contentLength"]


def interrupted(dest: Path, guid: str, piece: dict[str, Any], size: int, **stamp: Any) -> None:
    """Leave ``dest.part`` with the first ``size`` bytes of ``piece`` (as generated) and the
    sidecar an interrupted download of it writes; ``stamp`` overrides the sidecar's fields."""
    key, length = piece["contentKey"], piece["contentLength"]
    modified = parse_instant(piece["lastModified"])
    assert modified is not None
    etag, date = validators(guid, key, modified, length)
    part_path(dest).write_bytes(content_bytes(guid, key, length)[:size])
    side = {"lastModified": None, "contentLength": length, "etag": etag, "httpLastModified": date}
    sidecar_path(dest).write_text(json.dumps(side | stamp))


def files(directory: Path, pattern: str = "*") -> list[Path]:
    return list(directory.glob(pattern))


@pytest.fixture
async def fake(dataset: Dataset) -> AsyncIterator[FakeVccServer]:
    async with FakeVccServer(dataset) as srv:
        yield srv


def test_url_path_escapes_dot_segments() -> None:
    assert content_url_path("g", "..") == "/interactions/g/content/%2E%2E"
    assert content_url_path("g", "a/b") == "/interactions/g/content/a%2Fb"
    assert content_url_path("g", "rec.wav") == "/interactions/g/content/rec.wav"


async def test_every_byte_right_through_faults(dataset: Dataset, tmp_path: Path) -> None:
    config = FakeConfig(faults=FAULTS)
    todo = pieces(dataset)
    assert len(todo) > 30 and any(c["contentLength"] > 2 * BLOCK_SIZE for _, c in todo)
    async with FakeVccServer(dataset, config) as srv, client_for(srv, max_attempts=15) as vcc:

        async def one(n: int, guid: str, piece: dict[str, Any]) -> None:
            result = await vcc.download(
                guid,
                piece["contentKey"],
                tmp_path / f"{n}.bin",
                expected_length=piece["contentLength"],
            )
            want = content_sha256(guid, piece["contentKey"], piece["contentLength"])
            assert result.sha256 == want
            assert result.size == piece["contentLength"]
            assert hashlib.sha256((tmp_path / f"{n}.bin").read_bytes()).hexdigest() == want

        await asyncio.gather(*(one(n, g, c) for n, (g, c) in enumerate(todo)))
        assert srv.stats.faults["truncate"] > 0 and srv.stats.faults["drop"] > 0
        assert vcc.stats.retries > 0
    assert not files(tmp_path, "*.part")


async def test_a_truncated_body_is_continued_with_range(dataset: Dataset, tmp_path: Path) -> None:
    guid, key, length = big_piece(dataset)
    config = FakeConfig(faults=FaultConfig(rate=0.5, kinds=("truncate",), seed=1))
    async with FakeVccServer(dataset, config) as srv, client_for(srv, max_attempts=30) as vcc:
        result = await vcc.download(guid, key, tmp_path / "x", expected_length=length)
        assert result.sha256 == content_sha256(guid, key, length)
        assert srv.stats.faults["truncate"] > 0
        # each cut body is continued: the server sent less than twice the content
        assert srv.stats.content_bytes_sent < 2 * length


async def test_partial_file_resumes_with_range(
    dataset: Dataset, fake: FakeVccServer, tmp_path: Path
) -> None:
    guid, key, length = big_piece(dataset)
    dest = tmp_path / "rec.wav"
    prefix = BLOCK_SIZE + 123
    interrupted(dest, *biggest(dataset), prefix)
    async with client_for(fake) as vcc:
        result = await vcc.download(guid, key, dest, expected_length=length)
    assert result.resumed_from == prefix and result.attempts == 1
    assert result.sha256 == content_sha256(guid, key, length)
    assert dest.read_bytes() == content_bytes(guid, key, length)
    assert fake.stats.content_bytes_sent == length - prefix
    assert not part_path(dest).exists() and not sidecar_path(dest).exists()


@pytest.mark.parametrize("kept", [BLOCK_SIZE + 123, "all"])
async def test_a_part_of_a_version_reprocessed_upstream_is_not_spliced(
    tmp_path: Path, kept: int | str
) -> None:
    """The piece changes (same length) after a part of it was written: the If-Range of the
    first answer's ETag gets the whole new version, never its tail after the old head; a
    part already complete is asked about too, not renamed into place."""
    dataset = generate(SPEC)  # its own: reprocessing changes the dataset
    guid, piece = biggest(dataset)
    key, length = piece["contentKey"], piece["contentLength"]
    dest = tmp_path / "rec.wav"
    interrupted(dest, guid, piece, length if kept == "all" else int(kept))
    async with FakeVccServer(dataset) as fake, client_for(fake) as vcc:
        new = fake.reprocess(guid, key)
        result = await vcc.download(guid, key, dest, expected_length=length)
        tag = fake.content_version(guid, key)
        assert fake.stats.content_requests == 1 and fake.stats.content_bytes_sent == length
    assert dest.read_bytes() == content_bytes(guid, key, length, tag)
    modified = parse_instant(new["lastModified"])
    assert modified is not None
    assert (result.etag, result.http_last_modified) == validators(guid, key, modified, length, tag)
    assert not part_path(dest).exists() and not sidecar_path(dest).exists()


@pytest.mark.parametrize("etags", [False, True], ids=["last-modified-only", "both"])
async def test_a_server_ignoring_if_range_does_not_get_a_part_spliced(
    tmp_path: Path, etags: bool
) -> None:
    """A server that ignores If-Range answers 206 with the tail of its new version: whichever
    validator it sends (here a Last-Modified only, or both), that answer is not continued;
    the download starts over from byte 0 and holds the new version whole."""
    dataset = generate(SPEC)
    guid, piece = biggest(dataset)
    key, length = piece["contentKey"], piece["contentLength"]
    dest = tmp_path / "rec.wav"
    interrupted(dest, guid, piece, BLOCK_SIZE + 123, **({} if etags else {"etag": None}))
    config = FakeConfig(content_etags=etags, content_if_range=False)
    async with FakeVccServer(dataset, config) as fake, client_for(fake) as vcc:
        fake.reprocess(guid, key)  # same length, one second later
        result = await vcc.download(guid, key, dest, expected_length=length)
        tag = fake.content_version(guid, key)
        assert fake.stats.content_requests == 2  # the spliced tail refused, then the whole
    assert dest.read_bytes() == content_bytes(guid, key, length, tag)
    assert result.sha256 == content_sha256(guid, key, length, tag) and result.attempts == 2
    assert (result.etag is None) is not etags


async def test_a_part_of_another_search_version_or_without_a_stamp_starts_over(
    dataset: Dataset, fake: FakeVccServer, tmp_path: Path
) -> None:
    guid, piece = biggest(dataset)
    key, length = piece["contentKey"], piece["contentLength"]
    stamped, bare = tmp_path / "stamped.wav", tmp_path / "bare.wav"
    interrupted(stamped, guid, piece, 1000, lastModified="2025-01-01T00:00:00Z")
    part_path(stamped).write_bytes(b"x" * 1000)  # not a prefix of what is asked now
    part_path(bare).write_bytes(b"x" * 1000)  # left without its sidecar
    async with client_for(fake) as vcc:
        for dest in (stamped, bare):
            result = await vcc.download(
                guid, key, dest, expected_length=length, last_modified=piece["lastModified"]
            )
            assert result.resumed_from == 0
            assert dest.read_bytes() == content_bytes(guid, key, length)
    assert fake.stats.content_bytes_sent == 2 * length


@pytest.fixture
def too_long_part(dataset: Dataset, tmp_path: Path) -> tuple[str, str, int, Path]:
    """The largest piece (guid, key, length) and a destination whose ``.part`` is longer."""
    guid, key, length = big_piece(dataset)
    dest = tmp_path / "rec.wav"
    interrupted(dest, *biggest(dataset), 0, contentLength=None)
    part_path(dest).write_bytes(b"x" * (length + 10))
    return guid, key, length, dest


async def test_a_partial_file_longer_than_the_content_starts_over(
    fake: FakeVccServer, too_long_part: tuple[str, str, int, Path]
) -> None:
    guid, key, length, dest = too_long_part
    async with client_for(fake) as vcc:
        result = await vcc.download(guid, key, dest, expected_length=length)
    assert result.resumed_from == 0 and result.sha256 == content_sha256(guid, key, length)


async def test_without_expected_length_a_416_restarts(
    fake: FakeVccServer, too_long_part: tuple[str, str, int, Path]
) -> None:
    guid, key, length, dest = too_long_part
    async with client_for(fake) as vcc:
        result = await vcc.download(guid, key, dest)
    assert result.sha256 == content_sha256(guid, key, length) and result.attempts == 2
    assert 416 in fake.stats.statuses


async def test_length_mismatch_is_retried_then_reported(
    dataset: Dataset, fake: FakeVccServer, tmp_path: Path
) -> None:
    guid, key, length = big_piece(dataset)
    dest = tmp_path / "rec.wav"
    async with client_for(fake, max_attempts=3) as vcc:
        with pytest.raises(ResponseValidationError, match="length mismatch"):
            await vcc.download(guid, key, dest, expected_length=length + 1)
        assert vcc.stats.retries == 2
    assert not dest.exists()


async def test_to_a_file_object(dataset: Dataset, fake: FakeVccServer) -> None:
    guid, key, length = big_piece(dataset)
    buffer = io.BytesIO(b"head:")
    buffer.seek(0, io.SEEK_END)
    async with client_for(fake) as vcc:
        result = await vcc.download(guid, key, buffer, expected_length=length)
    assert result.path is None and result.size == length
    assert buffer.getvalue() == b"head:" + content_bytes(guid, key, length)


async def test_quirky_keys_are_fetched(dataset: Dataset, fake: FakeVccServer) -> None:
    quirky = [(g, c) for g, c in pieces(dataset) if c["contentKey"] == ".."]
    assert quirky, "the dataset's showcase interaction has a content key '..'"
    guid, piece = quirky[0]
    buffer = io.BytesIO()
    async with client_for(fake) as vcc:
        await vcc.download(guid, "..", buffer, expected_length=piece["contentLength"])
    assert buffer.getvalue() == content_bytes(guid, "..", piece["contentLength"])


async def test_not_found_and_bad_input(
    dataset: Dataset, fake: FakeVccServer, tmp_path: Path
) -> None:
    guid, _, _ = big_piece(dataset)
    async with client_for(fake) as vcc:
        with pytest.raises(NotFoundError):
            await vcc.download(guid, "no-such-key", tmp_path / "a")
        with pytest.raises(NotFoundError):
            await vcc.download("00000000-0000-4000-8000-000000000000", "k", tmp_path / "b")
        requests = fake.stats.requests
        for bad_guid, bad_key in (("", "k"), (guid, ""), (" ", "k")):
            with pytest.raises(InvalidRequestError):
                await vcc.download(bad_guid, bad_key, tmp_path / "c")
        assert fake.stats.requests == requests
    assert not files(tmp_path)


async def test_401_refreshes_the_token_once(mocked: aioresponses) -> None:
    url = f"{API}/interactions/g/content/k"
    token_answer(mocked, "tok-1")
    token_answer(mocked, "tok-2")
    mocked.get(url, status=401, payload={"message": "expired"})
    mocked.get(url, status=200, body=b"abc", headers={"Content-Type": "audio/wav"})
    buffer = io.BytesIO()
    async with VccClient(client_id="id", client_secret="secret", **FAST) as vcc:
        result = await vcc.download("g", "k", buffer, expected_length=3)
    assert buffer.getvalue() == b"abc" and result.attempts == 1
    sent = [c.kwargs["headers"]["Authorization"] for c in mocked.requests[("GET", URL(url))]]
    assert sent == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_second_401_is_final(mocked: aioresponses) -> None:
    url = f"{API}/interactions/g/content/k"
    token_answer(mocked, "tok-1")
    token_answer(mocked, "tok-2")
    mocked.get(url, status=401, repeat=True)
    async with VccClient(client_id="id", client_secret="secret", **FAST) as vcc:
        with pytest.raises(AuthenticationError):
            await vcc.download("g", "k", io.BytesIO())


async def test_wrong_credentials_are_final(dataset: Dataset, fake: FakeVccServer) -> None:
    guid, key, _ = big_piece(dataset)
    vcc = VccClient(
        client_id="nope", client_secret="nope", api_url=fake.api_url, auth_url=fake.auth_url
    )
    async with vcc:
        with pytest.raises(AuthenticationError):
            await vcc.download(guid, key, io.BytesIO())
    assert fake.stats.content_requests == 0


@pytest.mark.parametrize(("host", "authorized"), [("localhost", False), ("127.0.0.1", True)])
async def test_redirects_carry_the_token_only_to_the_api_origin(
    dataset: Dataset, tmp_path: Path, host: str, authorized: bool
) -> None:
    guid, key, length = big_piece(dataset)
    interrupted(tmp_path / "x", *biggest(dataset), 1000)
    config = FakeConfig(content_redirect_host=host)
    async with FakeVccServer(dataset, config) as srv, client_for(srv) as vcc:
        result = await vcc.download(guid, key, tmp_path / "x", expected_length=length)
        assert result.sha256 == content_sha256(guid, key, length)
        assert srv.stats.content_requests == 1 and srv.stats.storage_requests == 1
        seen = srv.stats.storage_headers[0]
        assert seen["Range"] == "bytes=1000-" and seen["If-Range"].startswith('"')
        assert ("Authorization" in seen) is authorized


async def test_redirect_loops_are_cut(
    dataset: Dataset, fake: FakeVccServer, tmp_path: Path
) -> None:
    from aiohttp import web

    async def loop(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": str(request.url)})

    app = web.Application()
    app.router.add_get("/interaction-content/interactions/{g}/content/{k}", loop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        vcc = VccClient(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            api_url=f"http://127.0.0.1:{port}/interaction-content",
            auth_url=fake.auth_url,
            **FAST,
        )
        async with vcc:
            with pytest.raises(Exception, match="redirects"):
                await vcc.download("g", "k", io.BytesIO())
    finally:
        await runner.cleanup()
