"""Issue 13, case 2 (and 7's OSError): a full disk or a driver killed with its workers alive is
the machine's fault: no video is marked failed, the run stops with one line, and the next run
finishes the work."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from emotions_data.ingest.outputs import verified_record
from emotions_data.ingest.prepare import PrepareConfig
from emotions_data.schema.atomic import sha256_file
from emotions_data.testing.http import LoopbackServer
from tests.faults.conftest import (
    N_CLIPS,
    alive,
    children_of,
    cli,
    cli_argv,
    grow,
    one_line_error,
    statuses,
    url_list,
    wait_for,
)

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

KEY = PrepareConfig().outputs_key()


def _kib(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) // 1024


@pytest.mark.parametrize(
    "headroom_kib",
    [96, 2048],  # ffmpeg's outputs hit the full disk / the cache arrays (6 MB a video) do
    ids=["ffmpeg-output", "cache-write"],
)
def test_full_disk_in_prepare_fails_no_video_and_the_next_run_finishes(
    tmpfs: Callable[[int], Path], fetched: Path, headroom_kib: int
) -> None:
    disk = tmpfs(_kib(fetched) + headroom_kib)
    root = disk / "root"
    shutil.copytree(fetched, root)
    err = one_line_error(cli("prepare", "--root", str(root), "--no-progress", "--workers", "1"))
    assert "prepare stopped" in err and "no video was marked failed" in err
    assert "No space left on device" in err or "a short write: 0 MiB free" in err
    assert "failed" not in statuses(root).values()  # the old run made 2 of 24 failed for good

    grow(disk, 64 * 1024)  # space freed
    done = cli("prepare", "--root", str(root), "--no-progress", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert set(statuses(root).values()) == {"ok"}
    assert all(verified_record(root, vid, KEY) for vid in statuses(root))


def test_full_disk_in_fetch_fails_no_url_and_the_next_run_finishes(
    tmpfs: Callable[[int], Path], server: LoopbackServer, tmp_path: Path
) -> None:
    disk = tmpfs(100)  # one 63 KB clip and the manifest fit, a second clip does not
    root = disk / "root"
    urls = url_list(tmp_path, server, [f"c{i}.mp4" for i in range(N_CLIPS)])
    err = one_line_error(cli("fetch", str(urls), "--out", str(root), "--workers", "1"))
    assert "No space left on device" in err and "fetch stopped" in err
    if (root / "videos.parquet").exists():
        assert "failed" not in statuses(root).values()

    grow(disk, 4096)
    done = cli("fetch", str(urls), "--out", str(root), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert list(statuses(root).values()) == ["ok"] * N_CLIPS


def test_no_space_for_the_manifest_is_one_line_and_the_old_manifest_stays(
    tmpfs: Callable[[int], Path], fetched: Path, server: LoopbackServer, tmp_path: Path
) -> None:
    disk = tmpfs(_kib(fetched) + 512)
    root = disk / "root"
    shutil.copytree(fetched, root)
    before = sha256_file(root / "videos.parquet")
    with open(disk / "filler", "wb") as fh:  # fill the disk, then free two pages
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    os.truncate(disk / "filler", max(0, (disk / "filler").stat().st_size - 8192))
    urls = url_list(tmp_path, server, [f"c{i}.mp4" for i in range(N_CLIPS)])
    with urls.open("a") as fh:
        fh.write("ftp://127.0.0.1/new.mp4\n")  # one new row: the manifest must be rewritten
    err = one_line_error(cli("fetch", str(urls), "--out", str(root)))
    assert err.startswith("Error: No space left on device (ENOSPC)")
    assert sha256_file(root / "videos.parquet") == before


def test_driver_killed_alone_takes_its_workers_and_the_rerun_fails_nothing(
    fetched: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(fetched, root)
    args = ["prepare", "--root", str(root), "--no-progress", "--workers", "2"]
    proc = subprocess.Popen(cli_argv(*args), start_new_session=True)
    try:
        # killed while both workers are busy with a video
        wait_for(
            lambda: len(list((root / ".prepare-tmp").glob("*"))) >= 2,
            proc,
            "two videos in flight",
        )
        workers = children_of(proc.pid)
        assert len(workers) >= 2
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone, not its process group
        proc.wait()
        wait_for_death = [w for w in workers if alive(w)]
        deadline = 50
        while wait_for_death and deadline:
            deadline -= 1
            subprocess.run(["sleep", "0.1"], check=True)
            wait_for_death = [w for w in workers if alive(w)]
        assert wait_for_death == [], "pool workers outlived their driver"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    # the next run starts at once (the lock died with the driver) and fails nothing
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert set(statuses(root).values()) == {"ok"}
    assert all(verified_record(root, vid, KEY) for vid in statuses(root))


def test_rows_an_older_run_failed_for_a_full_disk_are_retried(
    prepared: Path, tmp_path: Path
) -> None:
    """Before this fix, a full disk left rows ``failed`` / ``other`` for good; they come back."""
    import pandas as pd

    from emotions_data.schema.io import read_manifest, write_manifest

    root = tmp_path / "root"
    shutil.copytree(prepared, root)
    df = read_manifest(root / "videos.parquet", "videos").df
    victim = df["video_id"].iloc[0]
    df.loc[0, ["status", "error_kind", "error_message"]] = [
        "failed",
        "other",
        "OSError: No space left on device",
    ]
    df.loc[0, ["normalized_path", "audio_path", "cache_path", "phash"]] = pd.NA
    write_manifest(df, root / "videos.parquet", "videos")
    done = cli("prepare", "--root", str(root), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert statuses(root)[victim] == "ok"
    # its outputs were still intact: adopted from the completion record, not decoded again
    assert f"prepared 0, already done {N_CLIPS}" in done.stdout
