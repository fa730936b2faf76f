"""benchmarks/gpu_check.py: a clean exit without CUDA, and its measuring parts on the CPU."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from emotions_data.baselines.avcpnet import AVCPNet, load_config

REPO = Path(__file__).parents[2]
TINY = REPO / "baselines" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_exits_cleanly() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ran"] is False and "no CUDA device" in report["reason"]
    assert done.stderr.startswith("gpu_check: no CUDA device") and "Traceback" not in done.stderr


def test_step_rates_and_overhead_on_cpu(gpu_check: ModuleType) -> None:
    config = load_config(TINY)
    args = type("Args", (), {"batch": 1, "steps": 1, "warmup": 1})()
    runs = gpu_check.train_step_section(config, torch.device("cpu"), args)
    assert runs["full_bf16"]["parameters"] == sum(
        p.numel() for p in AVCPNet(config.model).parameters()
    )
    assert runs["visual_bf16"]["parameters"] < runs["full_bf16"]["parameters"]
    assert all(runs[k]["samples_per_s"] > 0 for k in ("full_bf16", "full_fp32", "visual_bf16"))
    assert runs["audio_fusion_overhead"] == pytest.approx(
        runs["full_bf16"]["step_ms"] / runs["visual_bf16"]["step_ms"] - 1
    )
    assert "peak_gib" not in runs["full_bf16"]  # CUDA only


def test_loader_wait_share_on_cpu(gpu_check: ModuleType, tmp_path: Path) -> None:
    from emotions_data.testing.caches import synthetic_dataset

    manifest = synthetic_dataset(tmp_path, per_class={"train": 1}, classes=6)
    config = load_config(TINY, {"data.workers": 0})  # in-process: the wait is the loading
    result = gpu_check.loader_wait(manifest, tmp_path, config, torch.device("cpu"), batch=2)
    assert result["steps"] == 3 and result["workers"] == 0
    assert 0.0 <= result["data_wait_share"] <= 1.0 and result["samples_per_s"] > 0
