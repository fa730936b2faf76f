"""benchmarks/prepare.py runs at a small size, so the benchmark cannot rot."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "prepare.py"


@pytest.mark.slow
def test_prepare_benchmark_measures_both_sides(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    args = [sys.executable, str(BENCHMARK), "--clips", "2", "--rounds", "1", "--duration", "2"]
    cpu_before, started = _children_cpu(), time.monotonic()
    out = subprocess.run(
        [*args, "--work", str(tmp_path / "work"), "--json", str(figures), "--profile"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # what the kernel says the benchmark and everything it started used, measured here
    cpu_used, wall_used = _children_cpu() - cpu_before, time.monotonic() - started
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(figures.read_text())
    # the benchmark itself asserts both clips came out ok and the second run did nothing
    assert got["clips"] == 2 and got["rounds"] == 1
    for side in ("bare", "prepare", "prepare_nothing_to_do"):
        assert got[side]["wall_s"] > 0 and got[side]["cpu_s"] > 0, side
    # the sides are parts of the benchmark's own run: a figure counted twice, in the wrong
    # unit or from the wrong process would exceed what the kernel measured for all of it
    sides = [got[side] for side in ("bare", "prepare", "prepare_nothing_to_do")]
    assert sum(side["cpu_s"] for side in sides) <= cpu_used * 1.02
    assert sum(side["wall_s"] for side in sides) <= wall_used
    # decoding and encoding two clips costs far more than a run that finds them done
    assert got["prepare"]["cpu_s"] > 2 * got["prepare_nothing_to_do"]["cpu_s"]
    # the bare tools decode the same clips: a sizable share of what prepare spends on them
    # beyond its start-up (on 2-second clips start-up is a third of prepare's CPU, and a
    # busy machine had the bare side at 0.48 of prepare's whole)
    work = got["prepare"]["cpu_s"] - got["prepare_nothing_to_do"]["cpu_s"]
    assert got["bare"]["cpu_s"] > 0.5 * work
    assert "CPU prepare / bare tools, whole processes:" in out.stdout
    # the profile splits one worker's CPU into its steps and its ffmpeg's
    profile = got["profile_ms_per_video"]
    assert profile["ffmpeg + ffprobe"] > 0 and profile["bare ffmpeg + ffprobe"] > 0
    steps = [v for k, v in profile.items() if k.startswith("own: ") and k != "own: all"]
    assert len(steps) == 6 and all(v >= 0 for v in steps)
    assert sum(steps) <= profile["own: all"] * 1.01
    # the clips were kept under --work: a second run reuses them
    assert len(list((tmp_path / "work" / "clips").glob("*.mp4"))) == 2


def _children_cpu() -> float:
    """User + system CPU seconds of this process's waited-for children and theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
