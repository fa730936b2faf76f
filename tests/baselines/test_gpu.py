"""CUDA paths: bf16 autocast training and evaluation agree with the fp32 CPU model (skipped
without a GPU)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from emotions_data.baselines.avcpnet import load_config
from emotions_data.baselines.avcpnet.epoch import _autocast
from emotions_data.baselines.avcpnet.trainer import evaluate_checkpoint, fit
from tests.baselines.synthetic import synthetic_dataset

TINY = Path(__file__).parents[2] / "baselines" / "configs" / "tiny.yaml"

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_bf16_training_on_cuda_matches_the_fp32_model(tmp_path: Path) -> None:
    manifest = synthetic_dataset(tmp_path, per_class={"train": 2, "val": 1}, classes=6)
    config = load_config(TINY, {"optim.epochs": 2, "optim.amp": True})
    result = fit(manifest, tmp_path, config, tmp_path / "run", device="cuda")
    assert len(result.history) == 2
    assert all(math.isfinite(h["train"]["loss"]) for h in result.history)
    state = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)
    assert "cuda" in state["rng"]
    # autocast really runs the heads in bf16 on CUDA (and leaves the CPU in fp32)
    layer = torch.nn.Linear(4, 2)
    x = torch.randn(3, 4)
    with _autocast(torch.device("cuda"), True):
        assert layer.cuda()(x.cuda()).dtype == torch.bfloat16
    with _autocast(torch.device("cpu"), True):
        assert layer.cpu()(x).dtype == torch.float32
    # the bf16 CUDA evaluation of the trained checkpoint gives the fp32 CPU probabilities
    # to bf16 precision: the CUDA path computes the same model, not merely something
    best = tmp_path / "run" / "best.pt"
    evaluate_checkpoint(best, split="val", out=tmp_path / "cuda", device="cuda")
    evaluate_checkpoint(best, split="val", out=tmp_path / "cpu", device="cpu")
    on_cuda, on_cpu = (
        pd.read_csv(tmp_path / side / "val_predictions.csv").sort_values("video_id")
        for side in ("cuda", "cpu")
    )
    assert on_cuda["video_id"].tolist() == on_cpu["video_id"].tolist() and len(on_cpu) == 6
    probabilities = [c for c in on_cpu.columns if c.startswith("p_")]
    assert len(probabilities) == 6, list(on_cpu.columns)
    difference = np.abs(on_cuda[probabilities].to_numpy() - on_cpu[probabilities].to_numpy())
    assert difference.max() < 0.05, difference.max()
