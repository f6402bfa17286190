"""Backfill tasks of many accounts on a ``dask.distributed`` cluster (the ``dask`` extra).

``run_tasks(client, tasks, output)`` keeps at most ``task.parallel`` tasks of each account
running at once (the number their rate shares assume), starting the next task of an account
only when one of its running tasks has ended, so an account never exceeds its budget however
many workers there are. Progress is reported as tasks end. A worker that dies mid-task loses
nothing: Dask runs the task again elsewhere and it resumes from the shared checkpoint.

Workers find credentials per account in their environment (``VCC_<ACCOUNT>_CLIENT_ID``, ...)
or in an accounts file readable on every worker (see ``vccasync.distributed._accounts``); the
task graph carries only the tasks' JSON, the output URL and that file's path.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import asdict, frozen

from .._errors import VccError
from ..stores._postgres import redact_url
from ._tasks import Task, TaskResult, run_task, task_from_json

try:
    from distributed import Client, Future, as_completed
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "vccasync.distributed._dask needs dask.distributed: pip install 'vccasync[dask]'"
    ) from exc

__all__ = ["Progress", "run_tasks"]

log = logging.getLogger("vccasync")


@frozen
class Progress:
    """Reported each time a task ends: how far the backfill is, and that task's outcome."""

    done: int
    total: int
    written: int  # interactions written so far, all tasks together
    result: TaskResult | None  # None when the task failed
    error: str | None = None


def _run_one(
    task: Mapping[str, Any], output: str, accounts_file: str | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """On a worker: run one task (JSON) to its end; its result as plain data."""
    result = asyncio.run(
        run_task(task_from_json(task), output, accounts_file=accounts_file, **options)
    )
    return asdict(result)


def _log_progress(event: Progress) -> None:
    if event.result is None:
        log.warning("task %d/%d failed: %s", event.done, event.total, event.error)
    else:
        r = event.result
        log.info(
            "task %d/%d done: %s %s, %d interactions, %d requests, %.1f s",
            event.done,
            event.total,
            r.account,
            r.task,
            r.written,
            r.requests,
            r.seconds,
        )


def run_tasks(
    client: Client,
    tasks: Sequence[Task],
    output: str,
    *,
    accounts_file: str | None = None,
    progress: Callable[[Progress], None] | None = _log_progress,
    retries: int = 2,
    **run_options: Any,
) -> list[TaskResult]:
    """Run ``tasks`` on ``client``'s cluster into the PostgreSQL database ``output``.

    Blocks until every task has ended and returns their results; raises ``VccError`` naming
    the tasks that failed (after ``retries`` more tries each) once the others are done.
    ``run_options`` go to ``run_task`` on the workers (``page_size``, ``concurrency``, ...).
    """
    queues: dict[str, deque[Task]] = defaultdict(deque)
    for task in tasks:
        queues[task.account].append(task)
    slots = {account: min(t.parallel for t in queue) for account, queue in queues.items()}
    batch = uuid.uuid4().hex[:8]
    running: dict[Future[dict[str, Any]], Task] = {}

    def submit(account: str) -> Future[dict[str, Any]] | None:
        if not queues[account]:
            return None
        task = queues[account].popleft()
        future = client.submit(
            _run_one,
            task.to_json(),
            output,
            accounts_file,
            dict(run_options),
            key=f"vccasync-{batch}-{account}-{task.id}",
            pure=False,
            retries=retries,
        )
        running[future] = task
        return future

    first = [f for account in queues for _ in range(slots[account]) if (f := submit(account))]
    results: list[TaskResult] = []
    failures: list[str] = []
    written = 0
    pending = as_completed(first)  # type: ignore[no-untyped-call]
    for future in pending:
        task = running.pop(future)
        try:
            result = TaskResult(**future.result())
        except Exception as exc:
            failures.append(f"{task.account} {task.id}: {exc}")
            event = Progress(len(results) + len(failures), len(tasks), written, None, str(exc))
        else:
            results.append(result)
            written += result.written
            event = Progress(len(results) + len(failures), len(tasks), written, result)
        future.release()
        if progress is not None:
            progress(event)
        if (nxt := submit(task.account)) is not None:
            pending.add(nxt)  # type: ignore[no-untyped-call]
    if failures:
        raise VccError(
            f"{len(failures)} of {len(tasks)} tasks into {redact_url(output)} failed"
            f" (rerun to resume them): " + "; ".join(failures)
        )
    return results
