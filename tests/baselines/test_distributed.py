"""DDP process-group lifetime: a run leaves the group it joined, so no rank dies at exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.baselines.torchrun import torchrun

# each rank joins through process_group, runs collectives as a training run does, and reports
# whether a group is still there afterwards (gloo on CPU, as in CI)
RANK_SCRIPT = """
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from emotions_data.baselines.avcpnet.distributed import all_gather_objects, process_group

with process_group("cpu") as (info, device):
    t = torch.ones(1000)
    for _ in range(20):
        dist.all_reduce(t)
    ranks = all_gather_objects(info.rank, info)
Path(sys.argv[1], f"rank{info.rank}.txt").write_text(
    f"rank {info.rank} of {info.world} saw {sorted(ranks)} sum {float(t[0])} "
    f"group left {not dist.is_initialized()}"
)
"""


@pytest.mark.slow
def test_two_gloo_ranks_leave_the_group_and_exit_cleanly(tmp_path: Path) -> None:
    # Without destroy_process_group, gloo's threads were still joinable at interpreter exit
    # and a rank died of "terminate called without an active exception" (SIGABRT) about one
    # run in four after all its work was done (a red CI once).
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    run = torchrun(str(script), str(tmp_path), timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "terminate called" not in run.stderr
    # a file each: the ranks' prints can interleave on the shared stdout
    reports = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert reports == [f"rank {r} of 2 saw [0, 1] sum {2.0**20} group left True" for r in (0, 1)]
