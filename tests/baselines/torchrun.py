"""Launch a command under ``torch.distributed.run`` on CPU, as a user runs DDP with torchrun."""

from __future__ import annotations

import os
import subprocess
import sys


def torchrun(*argv: str, ranks: int = 2, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node RANKS ARGV...``.

    One OpenMP thread per rank: the ranks share the machine's cores (gloo on CPU).
    """
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            str(ranks),
            *argv,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=timeout,
        check=False,
    )
