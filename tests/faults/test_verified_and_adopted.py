"""Issue 13, cases 5 and 8: a done item is verified (a truncated mp4, a 100-byte WAV, a missing
or changed cache array is redone), and a killed fetch loses no finished download."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from emotions_data.ingest.download import DONE_DIR
from emotions_data.ingest.outputs import verified_record
from emotions_data.ingest.prepare import PrepareConfig
from emotions_data.schema.safety import lock_holder
from emotions_data.testing.http import LoopbackServer
from tests.faults.conftest import N_CLIPS, cli, cli_argv, statuses, url_list, wait_for

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

KEY = PrepareConfig().outputs_key()


def test_damaged_outputs_are_redone_not_trusted(prepared: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(prepared, root)
    a, b, c, d = sorted(statuses(root))
    mp4 = root / "normalized" / f"{a}.mp4"
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])  # truncated
    (root / "audio" / f"{b}.wav").write_bytes(b"RIFF" + b"\0" * 96)  # a 100-byte WAV
    (root / "cache" / c / "logmel.npy").unlink()  # a missing feature file
    frames = root / "cache" / d / "frames.npy"
    data = bytearray(frames.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte changed
    frames.write_bytes(bytes(data))
    assert not any(verified_record(root, v, KEY) for v in (a, b, c, d))

    done = cli("prepare", "--root", str(root), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert f"prepared {N_CLIPS}, already done 0" in done.stdout
    assert set(statuses(root).values()) == {"ok"}
    assert all(verified_record(root, v, KEY) for v in (a, b, c, d))
    assert (root / "normalized" / f"{a}.mp4").stat().st_size > mp4.stat().st_size // 2 - 1

    again = cli("prepare", "--root", str(root), "--no-progress")
    assert f"prepared 0, already done {N_CLIPS}" in again.stdout


def test_killed_fetch_keeps_its_finished_downloads(server: LoopbackServer, tmp_path: Path) -> None:
    root = tmp_path / "root"
    urls = url_list(tmp_path, server, [f"c{i}.mp4" for i in range(N_CLIPS)])
    args = ["fetch", str(urls), "--out", str(root), "--no-progress", "--workers", "2"]
    proc = subprocess.Popen(cli_argv(*args), start_new_session=True)
    try:
        wait_for(lambda: (root / ".staging").is_dir(), proc, "a download in flight")
        os.kill(proc.pid, signal.SIGSTOP)  # the driver stops; its workers finish their downloads
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.3)
            in_flight = list((root / ".staging").glob("*")) if (root / ".staging").exists() else []
            if not in_flight and list((root / DONE_DIR).glob("*.json")):
                break
        os.kill(proc.pid, signal.SIGKILL)  # then dies before it writes their rows
        proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    written: set[str] = set()
    if (root / "videos.parquet").exists():
        written = set(pq.read_table(root / "videos.parquet").column("source_url").to_pylist())
    finished = {u for u in _record_urls(root) if u not in written}
    assert finished, "no download finished between the stop and the kill"
    requests_before = dict(server.requests)
    assert lock_holder(root) is None or not _alive_pid(lock_holder(root))

    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert f"adopted {len(finished)} finished by a killed run" in done.stdout
    assert list(statuses(root).values()) == ["ok"] * N_CLIPS
    for url in finished:  # not downloaded again
        path = url.rsplit(":", 1)[1].split("/", 1)[1]
        assert server.requests[f"/{path}"] == requests_before[f"/{path}"]
    assert not (root / DONE_DIR).exists()  # the records went once the manifest held them


def _record_urls(root: Path) -> set[str]:
    import json

    return {json.loads(p.read_text())["url"] for p in (root / DONE_DIR).glob("*.json")}


def _alive_pid(holder: dict[str, object]) -> bool:
    try:
        os.kill(int(str(holder.get("pid"))), 0)
    except (OSError, ValueError):
        return False
    return True
