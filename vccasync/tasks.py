"""Moved to :mod:`vccasync.distributed.tasks` (the old name keeps working)."""

from .distributed.tasks import *  # noqa: F403
from .distributed.tasks import __all__ as __all__
