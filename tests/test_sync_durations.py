"""Durations typed by people: compact units and ISO 8601."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vccasync._errors import InvalidRequestError
from vccasync.sync import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("48h", timedelta(hours=48)),
        ("2d", timedelta(days=2)),
        ("45s", timedelta(seconds=45)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        (" 2D ", timedelta(days=2)),
        ("0m", timedelta(0)),
        ("PT90M", timedelta(minutes=90)),
        ("P2D", timedelta(days=2)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT1H30M15S", timedelta(hours=1, minutes=30, seconds=15)),
        ("P1W", timedelta(weeks=1)),
        ("pt5m", timedelta(minutes=5)),
        (timedelta(hours=3), timedelta(hours=3)),
    ],
)
def test_good_durations(text: str | timedelta, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "90", "m", "5x", "-5m", "1h1h", "P", "PT", "P1DT", "P1Y", "P1M", "5 m", "1e3s", "PT-1H"],
)
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"^lookback must look like 90m"):
        parse_duration(text, name="lookback")


def test_not_a_string_or_negative() -> None:
    with pytest.raises(InvalidRequestError, match="every must be a string"):
        parse_duration(5, name="every")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="must not be negative"):
        parse_duration(timedelta(seconds=-1))


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500), st.integers(0, 5000))
def test_compact_and_iso_agree(days: int, hours: int, minutes: int, seconds: int) -> None:
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    assert parse_duration(f"{days}d{hours}h{minutes}m{seconds}s") == expected
    assert parse_duration(f"P{days}DT{hours}H{minutes}M{seconds}S") == expected
