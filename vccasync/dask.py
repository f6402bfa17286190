"""Moved to :mod:`vccasync.distributed.dask` (the old name keeps working)."""

from .distributed.dask import *  # noqa: F403
from .distributed.dask import __all__ as __all__
