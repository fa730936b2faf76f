"""A run killed with SIGKILL in the middle, then re-run: no partial file, no duplicate row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from emotions_data.ingest.probe import probe
from emotions_data.schema.io import read_manifest
from emotions_data.testing.http import serve_directory
from emotions_data.testing.media import make_clip

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from emotions_data.cli import main; main()", *args]


def _kill_when(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its pool workers, started by this test
    proc.wait()


def _final_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]


def test_fetch_and_prepare_killed_then_rerun(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for i in range(6):
        make_clip(
            site / f"c{i}.mp4",
            width=96,
            height=160,
            duration=1.5,
            fps=10,
            source="noise",
            noise_seed=i,
        )
    root = tmp_path / "root"
    with serve_directory(site) as srv:
        urls = tmp_path / "urls.csv"
        pd.DataFrame({"url": [srv.url(f"c{i}.mp4") for i in range(6)]}).to_csv(urls, index=False)
        profile = tmp_path / "slow.yaml"
        profile.write_text("default: {sleep_interval_s: 0.4}\n")  # slow enough to be killed mid-run
        args = ["fetch", str(urls), "--out", str(root), "--workers", "2", "--no-progress"]
        proc = subprocess.Popen(_cli(*args, "--profile", str(profile)), start_new_session=True)
        # killed once the first result is in the manifest, with other downloads in flight
        _kill_when(proc, lambda: (root / "videos.parquet").exists())
        # whatever carries a final name is a complete, readable mp4
        for path in _final_files(root / "media"):
            assert path.suffix == ".mp4" and probe(path).duration_s > 1.0
        done = subprocess.run(_cli(*args), capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert "skipped 0 done" not in done.stdout  # what finished before the kill is kept
    df = read_manifest(root / "videos.parquet", "videos").df
    assert len(df) == 6 and df["source_url"].is_unique and df["video_id"].is_unique
    assert set(df["status"]) == {"ok"}
    assert len(_final_files(root / "media")) == 6
    assert not (root / ".staging").exists()

    # prepare, killed once some caches exist, then re-run
    args = ["prepare", "--root", str(root), "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(_cli(*args), start_new_session=True)
    before = (root / "videos.parquet").stat().st_mtime_ns
    _kill_when(proc, lambda: (root / "videos.parquet").stat().st_mtime_ns != before)
    for folder in (root / "cache").iterdir():
        assert folder.name.startswith(".") or (folder / "meta.json").exists()
    for path in _final_files(root / "normalized"):
        assert probe(path).duration_s > 1.0  # a final name always holds a whole file
    done = subprocess.run(_cli(*args), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "already done 0" not in done.stdout
    df = read_manifest(root / "videos.parquet", "videos").df
    assert len(df) == 6 and set(df["status"]) == {"ok"} and df["cache_path"].notna().all()
    assert sorted(p.name for p in (root / "cache").iterdir()) == sorted(df["video_id"])
    assert len(_final_files(root / "normalized")) == 6
    assert not (root / ".prepare-tmp").exists()
    leftovers = [p for d in ("normalized", "audio", "cache") for p in (root / d).glob(".*")]
    assert leftovers == []  # temporary files of the killed run are cleaned up
