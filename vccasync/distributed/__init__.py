"""Many accounts: a backfill planned as data (``tasks``: one JSON task per account and
period, run anywhere into PostgreSQL), credentials per account (``accounts``) and running the
tasks on a Dask cluster (``dask``).

``run_tasks`` and ``Progress`` need the ``dask`` extra; they are imported on first use, so the
rest works with the ``postgres`` extra alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._accounts import credentials, env_prefix
from ._tasks import Task, TaskResult, plan, run_task, task_from_json

if TYPE_CHECKING:
    from ._dask import Progress, run_tasks

__all__ = [
    "Progress",
    "Task",
    "TaskResult",
    "credentials",
    "env_prefix",
    "plan",
    "run_task",
    "run_tasks",
    "task_from_json",
]

_NEEDS_DASK = frozenset({"Progress", "run_tasks"})


def __getattr__(name: str) -> Any:
    if name in _NEEDS_DASK:
        from . import _dask as dask

        return getattr(dask, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
