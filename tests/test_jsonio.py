"""JSON decoding and encoding: every digit of every integer, with orjson and without."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vccasync import _jsonio as jsonio
from vccasync.fake import DatasetSpec, generate

# 16 to 19 digits lose digits as floats; beyond 64 bits orjson itself reads a float
WIDE = [
    1234567890123456789012345,  # 25 digits
    -9223372036854775809,  # one below int64
    18446744073709551616,  # one above uint64
    9007199254740993,  # 2**53 + 1: 16 digits
    12345678901234567,
    123456789012345678,
    9999999999999999999,  # 19 digits
    -1234567890123456789,
]


@pytest.mark.parametrize("number", WIDE)
def test_integers_keep_every_digit(decoder: str, number: int) -> None:
    for body in (f'{{"n":{number},"s":"x"}}', f'[1,{{"deep":[{number}]}}]'):
        decoded = jsonio.loads(body.encode())
        assert json.dumps(decoded, separators=(",", ":")) == body
        assert jsonio.loads(body) == decoded  # str bodies too
        assert jsonio.dumps(decoded) == body.encode()


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_any_integer_round_trips(number: int) -> None:
    body = jsonio.dumps({"n": number, "t": [number, "a"]})
    assert jsonio.loads(body) == {"n": number, "t": [number, "a"]}
    with jsonio.stdlib_only():
        assert jsonio.loads(body) == {"n": number, "t": [number, "a"]}


def test_digits_in_strings_and_floats_decode_alike(decoder: str) -> None:
    body = b'{"token":"12345678901234567890123","f":1.5e300,"g":-0.25,"u":"\\u00e9"}'
    assert jsonio.loads(body) == json.loads(body)


@pytest.mark.parametrize("body", [b"", b"{", b'{"a":}', b"\xff", b"nope"])
def test_invalid_json_raises_value_error(decoder: str, body: bytes) -> None:
    with pytest.raises(ValueError):
        jsonio.loads(body)


def test_stdlib_only_is_undone_on_exit() -> None:
    before = jsonio._fast
    with pytest.raises(RuntimeError), jsonio.stdlib_only():
        assert not jsonio._fast
        raise RuntimeError
    assert jsonio._fast is before


def test_dumps_is_compact_utf8(decoder: str) -> None:
    assert jsonio.dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()


def test_only_wide_integers_leave_the_fast_path() -> None:
    page = generate(DatasetSpec(seed=3, days=1, per_day=1000))
    body = jsonio.dumps({"items": [page.item(p) for p in range(len(page))], "meta": {}})
    assert not jsonio._may_overflow(body)  # a whole page of the fake: orjson reads it
    assert not jsonio._may_overflow(b"[9999999999999999999,-999999999999999999]")
    assert jsonio._may_overflow(b"[10000000000000000000]")
    assert jsonio._may_overflow("[-1000000000000000000]")
