"""Durations as people type them: ``90m``, ``48h``, ``2d``, ``1h30m``, or ISO 8601 ``PT90M``.

Pure parsing, no I/O. Units: ``s``, ``m`` (minutes), ``h``, ``d``, ``w``; ISO 8601 durations
take weeks, days, hours, minutes and seconds (years and months have no fixed length and are
refused). Anything else raises ``InvalidRequestError`` with one clear line.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

from .._errors import InvalidRequestError

__all__ = ["parse_duration"]

_NUMBER: Final = r"\d+(?:\.\d+)?"
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SHORT: Final = re.compile(rf"(?:{_NUMBER}[smhdw])+")
_SHORT_PART: Final = re.compile(rf"({_NUMBER})([smhdw])")
_ISO: Final = re.compile(
    rf"P(?:(?P<weeks>{_NUMBER})W)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?"
)


def parse_duration(value: str | timedelta, *, name: str = "duration") -> timedelta:
    """A ``timedelta`` from ``90m``/``48h``/``2d``/``1h30m``/``45s``/``1w`` or ISO 8601
    (``PT90M``, ``P2D``, ``P1DT2H``); a ``timedelta`` is returned unchanged. Never negative."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise InvalidRequestError(f"{name} must not be negative, got {value}")
        return value
    if not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string like 90m, 48h, 2d or PT90M")
    text = value.strip()
    if _SHORT.fullmatch(text.lower()):
        units = [unit for _, unit in _SHORT_PART.findall(text.lower())]
        if len(set(units)) == len(units):
            parts = _SHORT_PART.findall(text.lower())
            return timedelta(**{_UNITS[unit]: float(n) for n, unit in parts})
    iso = _ISO.fullmatch(text.upper())
    if iso and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        return timedelta(**{k: float(v) for k, v in iso.groupdict().items() if v is not None})
    raise InvalidRequestError(
        f"{name} must look like 90m, 48h, 2d, 1h30m or ISO 8601 (PT90M, P2D), got {value!r}"
    )
