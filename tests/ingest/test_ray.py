"""``--executor ray``: the same per-item functions on a local Ray instance (2 CPUs)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from emotions_data.ingest.executor_ray import run_on_ray
from emotions_data.ingest.fetch import fetch
from emotions_data.ingest.prepare import prepare
from emotions_data.schema.io import read_manifest
from emotions_data.testing.http import serve_directory
from emotions_data.testing.malloc import large_block_from_heap

ray = pytest.importorskip("ray")

pytestmark = [
    pytest.mark.ffmpeg,
    pytest.mark.slow,
    # Ray Data's own context warns about its deprecated settings on every start
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

NAMES = ["card.mp4", "card-copy.mp4", "card-repost.mp4", "noise.mp4", "red.mp4", "blue.mp4"]
NAMES += ["silent.mp4", "short.mp4", "cut.mp4", "gone.mp4", "truncated.mp4"]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    from emotions_data.ingest.executor_ray import ensure_ray

    ensure_ray(None, 2)
    yield
    ray.shutdown()


def _manifest(root: Path) -> pd.DataFrame:
    df = read_manifest(root / "videos.parquet", "videos").df
    return df.drop(columns=["fetched_at"]).sort_values("video_id").reset_index(drop=True)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_one_busy_worker(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL one Ray worker (started by this test's Ray instance) while it runs a map task."""
    while not stop.is_set() and not killed:
        for pid in _descendants(os.getpid()):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::Map"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.05)


def test_ray_matches_local_and_survives_a_killed_worker(
    local_ray: None, site: Path, tmp_path: Path
) -> None:
    profile = {"default": {"backoff_s": 0.05}, "platforms": {"tiktok": {"concurrency": 1}}}
    with serve_directory(site) as srv:
        urls = pd.DataFrame(
            {"url": [srv.url(n) for n in NAMES], "platform": ["tiktok", "douyin"] * 5 + ["x"]}
        )
        local = fetch(urls, tmp_path / "local", workers=2, profile=profile, progress=False)
        on_ray = fetch(
            urls, tmp_path / "ray", workers=2, profile=profile, progress=False, executor="ray"
        )
    assert on_ray.by_status == local.by_status and on_ray.by_error == local.by_error
    pd.testing.assert_frame_equal(_manifest(tmp_path / "local"), _manifest(tmp_path / "ray"))

    prepare(tmp_path / "local", workers=2, progress=False)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_busy_worker, args=(stop, killed), daemon=True)
    killer.start()
    try:
        summary = prepare(tmp_path / "ray", workers=2, progress=False, executor="ray")
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was caught running a task"
    # Ray's workers keep freed memory for the next item, as the local pool's do
    kept = run_on_ray(
        large_block_from_heap,
        [0, 1],
        workers=2,
        group_of=None,
        group_caps=None,
        address=None,
        max_retries=0,
    )
    assert False not in list(kept)  # None: the probe cannot tell on this worker's heap
    assert summary.processed == 7
    # the killed item was retried by Ray: same rows, nothing lost or doubled
    pd.testing.assert_frame_equal(_manifest(tmp_path / "local"), _manifest(tmp_path / "ray"))
