"""Where per-item work runs: the executor seam shared by ``fetch`` and ``prepare``.

Per-item functions are plain top-level functions that take one picklable task record and
return one picklable result record, and never raise for an item's own failure (they return a
failed result instead). An executor only maps such a function over tasks and yields results as
they complete, so the same functions can later run on Ray Data (``--executor ray``,
docs/design.md "Scale") without change.

``local`` is a process pool of long-lived workers, so each worker imports its libraries once,
not once per video. It forks: ``spawn``/``forkserver`` would re-import the caller's
``__main__`` in every worker (breaking scripts without a ``__main__`` guard and stdin), and
the per-item functions use no torch or OpenMP state that forking could break. Each worker
closes the root-lock descriptor it inherited (only the driver holds the lock) and asks the
kernel to kill it when its driver dies (``PR_SET_PDEATHSIG``), so a driver killed with
``kill -9`` leaves no worker racing the next run. Workers also keep the memory they free for
their next item (glibc ``mallopt``) rather than fault it back in for every video.
``serial`` runs in the calling process (debugging, tiny inputs). ``ray`` runs the same
functions on Ray Data (``executor_ray``), on a local Ray instance or an existing cluster.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Generator, Hashable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from emotions_data.ingest.worker_memory import keep_freed_memory
from emotions_data.schema.errors import ConfigError, EnvironmentFault
from emotions_data.schema.safety import release_inherited_locks

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "serial", "ray")


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _init_worker(driver_pid: int) -> None:
    """Pool worker initializer: drop the inherited root lock; die when the driver dies; keep
    freed memory for the next item."""
    release_inherited_locks()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != driver_pid:  # the driver died before the prctl took effect
        os._exit(1)
    keep_freed_memory()


def check_executor(name: str) -> str:
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
    return name


def run_tasks(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    workers: int = 2,
    executor: str = "local",
    group_of: Callable[[T], Hashable] | None = None,
    group_caps: Mapping[Any, int] | None = None,
    ray_address: str | None = None,
    max_retries: int = 3,
) -> Generator[R, None, None]:
    """Yield ``fn(task)`` for every task, in completion order.

    ``group_of``/``group_caps`` cap how many tasks of one group (e.g. one platform) run at
    once, so one site's rate limit does not hold back the others. Closing the iterator early
    cancels the tasks not yet started. ``ray_address``/``max_retries`` apply to ``ray`` only
    (``max_retries``: how often Ray re-runs an item whose worker died).
    """
    check_executor(executor)
    pending: deque[T] = deque(tasks)
    if not pending:
        return
    if executor == "ray":
        from emotions_data.ingest.executor_ray import run_on_ray

        yield from run_on_ray(
            fn,
            list(pending),
            workers=workers,
            group_of=group_of,
            group_caps=group_caps,
            address=ray_address,
            max_retries=max_retries,
        )
        return
    if executor == "serial" or workers <= 0:
        while pending:
            yield fn(pending.popleft())
        return
    caps = dict(group_caps or {})
    running: dict[Future[R], Hashable] = {}
    in_group: dict[Hashable, int] = {}

    def next_allowed() -> T | None:
        # first task whose group is under its cap; the deque keeps the input order otherwise
        for i, task in enumerate(pending):
            group = group_of(task) if group_of else None
            cap = caps.get(group, workers)
            if in_group.get(group, 0) < max(1, cap):
                del pending[i]
                return task
        return None

    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(os.getpid(),),
    ) as pool:
        try:
            while pending or running:
                while pending and len(running) < workers:
                    task = next_allowed()
                    if task is None:
                        break
                    group = group_of(task) if group_of else None
                    in_group[group] = in_group.get(group, 0) + 1
                    running[pool.submit(fn, task)] = group
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    group = running.pop(future)
                    in_group[group] -= 1
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        # a worker was killed (out of memory, kill -9): the machine's fault,
                        # no item is failed for it; what finished is kept by the caller's
                        # manifest and a re-run resumes from there
                        raise EnvironmentFault(
                            "a worker process died (killed or out of memory); no video was "
                            "marked failed, finished items are saved: run the command again"
                        ) from None
                    yield result
        finally:
            for future in running:
                future.cancel()
