"""Shared pieces of the fault campaign (issue 13): tiny served clips, a fetched root, real CLI
processes, snapshots of folders outside the root, and a small tmpfs for a full disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from emotions_data.schema.io import read_manifest
from emotions_data.testing.http import LoopbackServer, serve_directory
from emotions_data.testing.media import make_clip

N_CLIPS = 4


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``emotions-data ARGS`` in this process (Click's runner); an uncaught exception
    leaves no ``Error:`` line, so :func:`one_line_error` fails on it."""
    from click.testing import CliRunner

    from emotions_data.cli import main

    result = CliRunner().invoke(main, list(args))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def cli_process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``emotions-data ARGS`` as a real process; stdout and stderr as text."""
    return subprocess.run(
        cli_argv(*args), capture_output=True, text=True, check=False, timeout=timeout
    )


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", "from emotions_data.cli import main; main()", *args]


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert the run ended in exit 1 with exactly one ``Error: ...`` line and no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def snapshot(folder: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``folder``: kind, size and sha256 (links by their target), to compare."""
    found: dict[str, tuple[str, int, str]] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            found[rel] = ("link", 0, os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", 0, "")
        else:
            data = path.read_bytes()
            found[rel] = ("file", len(data), hashlib.sha256(data).hexdigest())
    return found


def statuses(root: Path) -> dict[str, str]:
    df = read_manifest(root / "videos.parquet", "videos").df
    return dict(zip(df["video_id"], df["status"], strict=True))


def wait_for(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    for i in range(N_CLIPS):
        make_clip(
            folder / f"c{i}.mp4",
            width=64,
            height=96,
            duration=1.5,
            fps=10,
            source="noise",
            noise_seed=11 + i,
            tone_hz=300 + 50 * i,
        )
    return folder


@pytest.fixture(scope="package")
def server(site: Path) -> Iterator[LoopbackServer]:
    with serve_directory(site) as srv:
        yield srv


def url_list(folder: Path, server: LoopbackServer, names: list[str], **columns: list[str]) -> Path:
    path = folder / f"urls-{uuid.uuid4().hex[:6]}.csv"
    pd.DataFrame({"url": [server.url(n) for n in names], **columns}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="package")
def fetched(tmp_path_factory: pytest.TempPathFactory, server: LoopbackServer) -> Path:
    """A root with N_CLIPS fetched videos (copy it before changing it: ``fresh_root``)."""
    from emotions_data.ingest.fetch import fetch

    folder = tmp_path_factory.mktemp("fetched")
    urls = pd.DataFrame({"url": [server.url(f"c{i}.mp4") for i in range(N_CLIPS)]})
    summary = fetch(urls, folder / "root", workers=2, progress=False)
    assert summary.by_status == {"ok": N_CLIPS}
    return folder / "root"


@pytest.fixture(scope="package")
def prepared(tmp_path_factory: pytest.TempPathFactory, fetched: Path) -> Path:
    from emotions_data.ingest.prepare import prepare

    root = tmp_path_factory.mktemp("prepared") / "root"
    shutil.copytree(fetched, root)
    summary = prepare(root, workers=2, progress=False)
    assert summary.by_status == {"ok": N_CLIPS}
    return root


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A folder holding the root and its siblings (``outside``: must never change)."""
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "keep.txt").write_text("not yours\n")
    (outside / "secret.txt").write_text("root:x:0:0:secret\n")
    return tmp_path


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``tmpfs(kib)`` mounts a tmpfs of that size (a disk that fills up); unmounted after."""
    mounted: list[Path] = []

    def mount(kib: int) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs for a full disk (needs root): {proc.stderr.strip()}")
        mounted.append(point)
        return point

    try:
        yield mount
    finally:
        for point in reversed(mounted):
            subprocess.run(["umount", "-l", str(point)], check=False)


def grow(point: Path, kib: int) -> None:
    """Free space on the full disk: remount the tmpfs bigger (its files stay)."""
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(point)], check=True)
