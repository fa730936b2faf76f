"""benchmarks/chain.py runs at a small size, so the benchmark cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emotions_data.annotation.server import LS_HOME

CHAIN = Path(__file__).resolve().parents[2] / "benchmarks" / "chain.py"
STAGES = ("primary", "cross_check_a", "cross_check_b", "expert")
#: The table's rows, in the order the chain runs them.
STEPS = [
    "server start",
    "allocate",
    *[
        step
        for stage in STAGES
        for step in (
            *([f"escalate to {stage}"] if stage != "primary" else []),
            f"push {stage}",
            f"simulate {stage}",
            f"pull {stage}",
            *(["evaluate a"] if stage == "cross_check_a" else []),
            *(["evaluate b"] if stage == "cross_check_b" else []),
        )
    ],
    "finalize",
    "agreement (1,000 bootstrap)",
    "split (5 folds)",
    "build-variants",
    "stats",
    "release",
]


@pytest.mark.slow
@pytest.mark.labelstudio
def test_chain_benchmark_runs_every_step(tmp_path: Path) -> None:
    if not (LS_HOME / "venv" / "bin" / "label-studio").exists():
        if os.environ.get("CI"):
            pytest.fail(f"Label Studio venv missing at {LS_HOME} (scripts/setup.sh installs it)")
        pytest.skip("Label Studio venv missing (run scripts/setup.sh)")
    rows = tmp_path / "rows.json"
    out = subprocess.run(
        [
            sys.executable,
            str(CHAIN),
            "--videos",
            "120",
            "--compare-to",
            "0",
            "--workdir",
            str(tmp_path),
            "--json",
            str(rows),
        ],
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    steps = {s["name"]: s for s in json.loads(rows.read_text())["steps"]}
    table = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0][2:] for line in table[1:-1]] == STEPS
    assert table[-1].startswith("| total |")
    # the simulated crowd's judgements went through Label Studio and came back: 3 per video
    assert steps["push primary"]["items"] == 120
    assert steps["simulate primary"]["items"] == 360
    assert steps["pull primary"]["items"] == 360
    assert steps["pull cross_check_a"]["items"] == 360
    assert 0 < steps["finalize"]["items"] <= 120
    for step in steps.values():
        assert step["wall"] > 0 and step["peak_mib"] > 0, step
