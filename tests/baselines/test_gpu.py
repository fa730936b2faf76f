"""CUDA paths: bf16 autocast training steps and a CUDA checkpoint (skipped without a GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emotions_data.baselines.avcpnet import load_config
from emotions_data.baselines.avcpnet.trainer import fit
from tests.baselines.synthetic import synthetic_dataset

TINY = Path(__file__).parents[2] / "baselines" / "configs" / "tiny.yaml"

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_bf16_training_on_cuda(tmp_path: Path) -> None:
    manifest = synthetic_dataset(tmp_path, per_class={"train": 2, "val": 1}, classes=6)
    config = load_config(TINY, {"optim.epochs": 2, "optim.amp": True})
    result = fit(manifest, tmp_path, config, tmp_path / "run", device="cuda")
    assert len(result.history) == 2
    assert all(h["train"]["loss"] == h["train"]["loss"] for h in result.history)  # no NaN
    state = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)
    assert "cuda" in state["rng"]
