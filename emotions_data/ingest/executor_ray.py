"""Run per-item functions on Ray Data: the ``--executor ray`` of ``fetch`` and ``prepare``.

Nothing here schedules: tasks become a Ray dataset (one item per block, so a slow video never
holds back others queued behind it in the same block), ``Dataset.map`` runs the very function
the local pool runs, and results stream back to the driver as they finish, where the caller
writes them to the manifest in atomic batches exactly as with the local pool. Per-platform
caps are the ``concurrency`` of one ``map`` per platform, which Ray enforces over the whole
cluster; the branches are unioned and run side by side. A worker that dies is retried by Ray
(``max_retries``); an item's own failure is already a result record, never a failed job.

The cluster needs the dataset root at the same path on every node (a shared filesystem),
ffmpeg/ffprobe on every node, and this package installed in the nodes' Python
(``pip install emotions-data[distributed]``). ``address`` (or ``RAY_ADDRESS``) joins an
existing cluster; otherwise a local Ray instance with ``workers`` CPUs is started.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

from emotions_data.ingest.worker_memory import keep_freed_memory
from emotions_data.schema.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")


_worker_ready = False  # per Ray worker process: keep_freed_memory has run here


def _apply(fn: Callable[[Any], Any], row: dict[str, Any]) -> dict[str, Any]:
    global _worker_ready
    if not _worker_ready:  # as the local pool's initializer does, once per worker process
        keep_freed_memory()
        _worker_ready = True
    # records travel pickled: Arrow columns of bytes, whatever the record's fields are
    return {"result": pickle.dumps(fn(pickle.loads(row["task"])))}


def ensure_ray(address: str | None, num_cpus: int) -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray: pip install 'emotions-data[distributed]'"
        ) from None
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            kwargs["num_cpus"] = num_cpus
        ray.init(address=address, **kwargs)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the caller shows its own progress
        ctx.print_on_execution_start = False
    return ray


def run_on_ray(
    fn: Callable[[T], R],
    tasks: list[T],
    *,
    workers: int,
    group_of: Callable[[T], Hashable] | None,
    group_caps: Mapping[Any, int] | None,
    address: str | None,
    max_retries: int,
) -> Iterator[R]:
    """Yield ``fn(task)`` for every task, computed by Ray Data, in completion order."""
    ray = ensure_ray(address, workers)  # the module, with ray.data imported

    caps = dict(group_caps or {})
    groups: dict[Hashable, list[T]] = {}
    for task in tasks:
        groups.setdefault(group_of(task) if group_of else None, []).append(task)
    branches = []
    for group, items in groups.items():
        ds = ray.data.from_items(
            [{"task": pickle.dumps(t)} for t in items], override_num_blocks=len(items)
        )
        concurrency = max(1, min(caps.get(group, workers), workers, len(items)))
        retries = {"max_retries": max_retries, "retry_exceptions": False}
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing task options this way but has no named parameter
            # for max_retries yet; it still applies them
            warnings.simplefilter("ignore", DeprecationWarning)
            branches.append(
                ds.map(
                    partial(_apply, fn),
                    compute=ray.data.TaskPoolStrategy(size=concurrency),
                    num_cpus=1,
                    ray_remote_args_fn=partial(dict, retries),
                )
            )
    dataset = branches[0].union(*branches[1:]) if len(branches) > 1 else branches[0]
    for row in dataset.iter_rows():
        yield pickle.loads(row["result"])
