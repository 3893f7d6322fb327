"""The background work a site runs while it serves (scheduled jobs, monitoring, health
checks, pull sources, replication), started and stopped as one.

Each part is a ``Task``: a ``start`` that begins its threads and a ``stop`` that ends
them. ``running`` starts the tasks in order and stops them in reverse when the app
stops. A task's stop is registered before its start, so when a start fails (the
catalog is down, say) every task begun so far, the failing one too, is stopped before
the error ends the startup: no thread is left working on a site that is being closed.
Stops must therefore be safe on a task that never started. A stop that fails is logged
and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

log = logging.getLogger("tain.server")


@dataclass(frozen=True)
class Task:
    name: str
    start: Callable[[], object]
    stop: Callable[[], object]


@asynccontextmanager
async def running(tasks: Sequence[Task]) -> AsyncIterator[None]:
    """Run ``tasks`` for the duration of the block (starts and stops in worker threads)."""
    async with AsyncExitStack() as stack:
        for task in tasks:
            stack.push_async_callback(_stop, task)
            await run_in_threadpool(task.start)
        yield


async def _stop(task: Task) -> None:
    try:
        await run_in_threadpool(task.stop)
    except Exception:
        log.exception("stopping %s failed", task.name)
