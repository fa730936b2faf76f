"""Issue 13, case 3: two writers on one root. The second fails at once naming the holder; the
first finishes with every video ok and one file per ok row (two real processes)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from emotions_data.schema.safety import lock_holder
from emotions_data.testing.http import LoopbackServer
from tests.faults.conftest import (
    N_CLIPS,
    cli_argv,
    cli_process,
    one_line_error,
    statuses,
    url_list,
    wait_for,
)

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]


def _second_writer_refused(root: Path, first: list[str], second: list[str]) -> None:
    proc = subprocess.Popen(cli_argv(*first), start_new_session=True)
    try:
        holder = lambda: (lock_holder(root) or {}).get("pid") == proc.pid  # noqa: E731
        wait_for(holder, proc, "the first run to take the lock")
        os.kill(proc.pid, signal.SIGSTOP)  # holds the lock for as long as the second one runs
        # The stopped first run never lets go of the lock while the second runs: an error at
        # all shows the second refuses at once instead of waiting (it would hang otherwise).
        err = one_line_error(cli_process(*second))
        os.kill(proc.pid, signal.SIGCONT)
        assert f"is in use by pid {proc.pid}" in err and first[0] in err
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_two_prepare_on_one_root(fetched: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(fetched, root)
    args = ["prepare", "--root", str(root), "--no-progress", "--workers", "1"]
    _second_writer_refused(root, args, args)
    assert list(statuses(root).values()) == ["ok"] * N_CLIPS
    # one file per ok row: nobody deleted the other's temporary files
    assert len(list((root / "normalized").glob("*.mp4"))) == N_CLIPS
    assert len([p for p in (root / "cache").iterdir() if not p.name.startswith(".")]) == N_CLIPS


def test_two_fetch_on_one_root(server: LoopbackServer, tmp_path: Path) -> None:
    root = tmp_path / "root"
    urls = url_list(tmp_path, server, ["c0.mp4", "c1.mp4"])
    args = ["fetch", str(urls), "--out", str(root), "--no-progress", "--workers", "2"]
    _second_writer_refused(root, args, args)
    assert list(statuses(root).values()) == ["ok"] * 2
    assert len(list((root / "media").rglob("*.mp4"))) == 2
