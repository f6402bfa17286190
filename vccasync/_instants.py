"""Instants as the API writes them: ISO 8601 in UTC, at most milliseconds. Pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["RESOLUTION", "floor_instant", "format_instant", "parse_instant"]

RESOLUTION = timedelta(milliseconds=1)  # the API's timestamps carry at most milliseconds

_fromisoformat = datetime.fromisoformat


def parse_instant(value: str | datetime) -> datetime:
    """An aware UTC datetime from an ISO 8601 string or a datetime; naive values are UTC."""
    if isinstance(value, str):
        moment = _fromisoformat(value)
    elif isinstance(value, datetime):
        moment = value
    else:
        raise TypeError(f"expected an ISO 8601 string or a datetime, got {value!r}")
    if moment.tzinfo is UTC:  # the API's own "...Z": fromisoformat gives the UTC singleton
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    """ISO 8601 in UTC with ``Z``, as the API writes it (milliseconds only when present)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if moment.microsecond % 1000 == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def floor_instant(moment: datetime) -> datetime:
    """``moment`` rounded down to the API's resolution (a whole millisecond)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
