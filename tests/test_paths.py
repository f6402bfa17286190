"""Safe file names from untrusted content keys: inside the destination, one file per key."""

from __future__ import annotations

import os
import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vccasync.content._paths import MAX_STEM, content_path, extension_for, safe_name

KEY_ALPHABET = string.ascii_letters + string.digits + "!-_.,*'()"
# documented keys, plus anything an API bug or an attacker might send
keys = st.one_of(
    st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=36),
    st.text(alphabet=".", min_size=1, max_size=5),
    st.text(min_size=1, max_size=300),
    st.text(alphabet="aA./\\:%~", min_size=1, max_size=12),
)
media = st.sampled_from(
    ["audio/wav", "application/json", "text/plain; charset=utf-8", "x/unknown", "", "a/b.c"]
)
FORBIDDEN = set('/\\:*?"<>|\0') | {chr(c) for c in range(32)}
ROOT = Path("/dest")
START = datetime(2025, 1, 6, 23, 30, tzinfo=UTC)


def check_name(name: str) -> None:
    assert name and not (set(name) & FORBIDDEN), name
    assert not name.startswith(".") and not name.endswith((".", " ")), name
    assert len(name.encode()) <= 255
    assert name.isascii()


@given(keys, media)
def test_a_name_is_one_safe_component(key: str, content_type: str) -> None:
    name = safe_name(key, extension_for(content_type))
    check_name(name)
    assert PurePosixPath(name).name == name and PureWindowsPath(name).name == name


@given(st.text(min_size=1, max_size=80), keys, media)
def test_never_escapes_the_destination(guid: str, key: str, content_type: str) -> None:
    path = content_path(ROOT, START, guid, key, content_type)
    assert path.parent.parent.parent.parent.parent == ROOT
    assert os.path.normpath(path).startswith(f"{ROOT}{os.sep}")
    assert path.relative_to(ROOT).parts[:3] == ("2025", "01", "06")
    check_name(path.parent.name)
    check_name(path.name)


@settings(max_examples=300)
@given(st.lists(st.tuples(keys, media), min_size=2, max_size=30))
def test_names_are_distinct_even_ignoring_case(pairs: list[tuple[str, str]]) -> None:
    distinct = {(k, extension_for(m)) for k, m in pairs}
    names = {safe_name(k, ext).lower() for k, ext in distinct}
    assert len(names) == len(distinct)


@given(st.text(alphabet="aAbB.", min_size=1, max_size=8))
def test_case_variants_never_collide(key: str) -> None:
    variants = {key.lower(), key.upper(), key.swapcase(), key}
    names = {safe_name(v, ".bin").casefold() for v in variants}
    assert len(names) == len(variants)


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("..", "%2E%2E.wav"),
        ("...", "%2E.%2E.wav"),
        ("rec(1).part,2", "rec%281%29.part%2C2.wav"),
        ("a/b", "a%2Fb.wav"),
        ("recording-1", "recording-1.wav"),
        ("Rec", "Rec~c1.wav"),
        ("CON", "%43ON~c7.wav"),
        ("nul.x", "%6Eul.x.wav"),
    ],
)
def test_examples(key: str, name: str) -> None:
    assert safe_name(key, ".wav") == name


def test_long_keys_are_shortened_with_a_hash() -> None:
    a, b = "k" * 400, "k" * 399 + "K"
    assert len(safe_name(a)) <= MAX_STEM and "~h" in safe_name(a)
    assert safe_name(a).lower() != safe_name(b).lower()
    escaped = safe_name("%" * 200)  # never cut an escape in two
    assert "%" not in escaped.split("~h")[0][-2:]


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError):
        safe_name("")


def test_extensions() -> None:
    assert extension_for("audio/wav") == ".wav"
    assert extension_for("Application/JSON; charset=utf-8") == ".json"
    assert extension_for("text/plain; charset=utf-8") == ".txt"
    assert extension_for("video/mp4") == ".mp4"
    assert extension_for("application/x-hologram") == ".bin"
    assert extension_for(None) == ".bin"


def test_date_directories_are_utc() -> None:
    local = START.astimezone(timezone(timedelta(hours=5)))  # already 7 January there
    path = content_path(ROOT, local, "g", "k", "audio/wav")
    assert path == ROOT / "2025" / "01" / "06" / "g" / "k.wav"
