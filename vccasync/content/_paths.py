"""Where downloaded content goes: safe, collision-free file names from untrusted keys (pure).

``content_path(root, start, guid, key, content_type)`` is
``root/YYYY/MM/DD/<safe guid>/<safe key><ext>``. A safe name:

- keeps ``A-Z a-z 0-9 - _ .`` and writes every other byte of the UTF-8 key as ``%XX``
  (``%`` included), so no separator, control or reserved character reaches the file system;
- escapes a leading and a trailing ``.`` (no hidden files, never ``.`` or ``..``, nothing
  Windows would trim) and the first letter of a
  Windows device name (``CON``, ``NUL``, ``COM1``, ...);
- adds ``~c<mask>`` (the positions of upper-case letters, base 36) when the key has upper-case
  letters, so that keys differing only in case stay apart on case-insensitive file systems;
- shortens a long result to a prefix plus ``~h`` and 20 hex digits of the key's SHA-256.

The extension (``.wav``, ``.json``, ``.bin`` ...) comes from the content type and never
contains a dot, so the last dot of a name always separates it: the mapping from
``(key, content type)`` to the lower-cased name is one-to-one (hash-shortened names aside,
whose collisions would need a SHA-256 collision on 80 bits).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

__all__ = ["MAX_STEM", "content_path", "extension_for", "safe_name"]

MAX_STEM: Final = 120
_SAFE: Final = frozenset(string.ascii_letters + string.digits + "-_.")
_DEVICES: Final = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in "0123456789"}
)
_EXTENSIONS: Final = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/ogg": "ogg",
    "video/mp4": "mp4",
    "application/json": "json",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/html": "html",
    "text/csv": "csv",
    "image/png": "png",
    "image/jpeg": "jpg",
}
_EXT_SHAPE: Final = re.compile(r"^[a-z0-9]{1,10}$")
# the interpreter's built-in table only: the same answer on every machine
_MIMETYPES: Final = mimetypes.MimeTypes(filenames=())


def extension_for(content_type: str | None) -> str:
    """``.wav``, ``.json`` ... for a content type (parameters ignored); ``.bin`` if unknown."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    ext = _EXTENSIONS.get(media)
    if ext is None:
        guessed = _MIMETYPES.guess_extension(media) or ""
        ext = guessed.lstrip(".").lower()
    if not _EXT_SHAPE.match(ext) or ext == "part":
        ext = "bin"
    return f".{ext}"


def _escape(text: str) -> str:
    out: list[str] = []
    for char in text:
        if char in _SAFE:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _case_mask(text: str) -> int:
    return sum(1 << i for i, char in enumerate(text) if char in string.ascii_uppercase)


def _base36(number: int) -> str:
    digits = string.digits + string.ascii_lowercase
    out = ""
    while number:
        number, rem = divmod(number, 36)
        out = digits[rem] + out
    return out or "0"


def safe_name(key: str, extension: str = "") -> str:
    """A file name for ``key`` that is safe on POSIX, macOS and Windows file systems.

    ``extension`` is appended as is (``""`` or a value of :func:`extension_for`).
    """
    if not key:
        raise ValueError("an empty key has no file name")
    stem = _escape(key)
    if stem.startswith("."):
        stem = "%2E" + stem[1:]
    if stem.endswith("."):  # Windows drops a trailing dot
        stem = stem[:-1] + "%2E"
    if stem.split(".", 1)[0].lower() in _DEVICES:
        stem = f"%{ord(stem[0]):02X}{stem[1:]}"
    if (mask := _case_mask(key)) and len(stem) <= MAX_STEM:
        stem += f"~c{_base36(mask)}"
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        prefix = stem[: MAX_STEM - 23]
        if "%" in prefix[-2:]:  # do not cut an escape in two
            prefix = prefix[: prefix.rindex("%")]
        stem = f"{prefix}~h{digest}"
    return stem + extension


def content_path(
    root: str | Path, start: datetime, guid: str, key: str, content_type: str | None
) -> Path:
    """``root/YYYY/MM/DD/<guid>/<key><ext>`` with the date of ``start`` in UTC."""
    day = (start if start.tzinfo else start.replace(tzinfo=UTC)).astimezone(UTC)
    return (
        Path(root)
        / f"{day.year:04d}"
        / f"{day.month:02d}"
        / f"{day.day:02d}"
        / safe_name(guid)
        / safe_name(key, extension_for(content_type))
    )
