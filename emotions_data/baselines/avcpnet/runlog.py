"""What a run records beside its checkpoints: a per-step JSONL log, TensorBoard events when
``tensorboard`` is installed (``pip install 'emotions-data[tensorboard]'``), and provenance
(the code's commit, package versions, the sha256 of the manifests trained on).
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from emotions_data.schema.atomic import sha256_file

STEP_LOG = "steps.jsonl"
TENSORBOARD_DIR = "tensorboard"
PACKAGES = ("emotions-data", "torch", "torchvision", "numpy", "pandas", "pyarrow")


def git_commit(start: Path | None = None) -> dict[str, Any] | None:
    """The commit of the checkout this package runs from (and whether it has local changes);
    None outside a git checkout (an installed wheel) or without git."""
    here = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())} if commit else None


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(manifests: list[Path]) -> dict[str, Any]:
    """Recorded in every checkpoint: enough to tell later which code and data made it."""
    import torch

    return {
        "git": git_commit(),
        "versions": package_versions(),
        "cuda": torch.version.cuda,
        "manifests": {str(p.resolve()): sha256_file(p) for p in manifests},
    }


class StepLog:
    """One JSON line per optimizer step in ``out/steps.jsonl`` (main process only), mirrored
    to TensorBoard when it is installed. A resumed run first drops the lines after its step."""

    def __init__(self, out: Path | None, resume_step: int = 0) -> None:
        self.path = out / STEP_LOG if out is not None else None
        self.writer: Any = None
        if self.path is None:
            return
        if self.path.exists():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    if int(json.loads(line)["step"]) <= resume_step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill
            self.path.write_text("".join(f"{line}\n" for line in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the optional extra is not installed
            return
        self.writer = SummaryWriter(str(out / TENSORBOARD_DIR) if out is not None else None)

    @property
    def tensorboard(self) -> bool:
        return self.writer is not None

    def step(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, int | float):
                    self.writer.add_scalar(f"train/{key}", value, record["step"])

    def epoch(self, step: int, scalars: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
