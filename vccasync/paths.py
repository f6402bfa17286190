"""Moved to :mod:`vccasync.content.paths` (the old name keeps working)."""

from .content.paths import *  # noqa: F403
from .content.paths import __all__ as __all__
