"""fit / evaluate / predict: exact resume, DDP parity, skipped caches, the CLI end to end."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from emotions_data.baselines.avcpnet import load_config
from emotions_data.baselines.avcpnet.checkpoint import load_checkpoint
from emotions_data.baselines.avcpnet.trainer import fit
from emotions_data.cli import main
from emotions_data.schema.cache import MFCC_FILE
from tests.baselines.synthetic import synthetic_dataset
from tests.baselines.torchrun import torchrun

TINY = Path(__file__).parents[2] / "baselines" / "configs" / "tiny.yaml"
# two epochs of three optimizer steps each (18 clips, micro-batch 4, accumulation 2)
FAST = {"optim.epochs": 2, "optim.batch_size": 4, "optim.accumulation": 2}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("train")
    manifest = synthetic_dataset(root, per_class={"train": 3, "val": 1, "test": 1}, classes=6)
    return root, manifest


@pytest.mark.slow
def test_resume_continues_exactly(data: tuple[Path, Path], tmp_path: Path) -> None:
    root, manifest = data
    config = load_config(TINY, FAST)
    straight = fit(manifest, root, config, tmp_path / "straight", device="cpu", seed=5)
    first = fit(
        manifest, root, config, tmp_path / "split", device="cpu", seed=5, stop_after_epochs=1
    )
    assert len(first.history) == 1
    state = load_checkpoint(tmp_path / "split" / "last.pt")
    assert state["epoch"] == 1 and state["step"] == 3  # ceil(ceil(18 / 4) / 2)
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config"} <= set(state)
    resumed = fit(
        manifest,
        root,
        load_config(TINY),
        tmp_path / "split",
        device="cpu",
        resume=tmp_path / "split" / "last.pt",
    )
    assert len(resumed.history) == 2
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert a["train"]["loss"] == pytest.approx(b["train"]["loss"], rel=1e-5, abs=1e-6)
        assert a["train"]["lr"] == pytest.approx(b["train"]["lr"], rel=1e-9)
        assert a["val"]["confusion_matrix"] == b["val"]["confusion_matrix"]
    s1 = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    s2 = load_checkpoint(tmp_path / "split" / "last.pt")["model"]
    for key in s1:
        assert torch.allclose(s1[key].float(), s2[key].float(), atol=1e-5), key


@pytest.mark.slow
def test_corrupt_cache_is_counted_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "data"
    manifest = synthetic_dataset(root, per_class={"train": 2, "val": 1}, classes=6)
    shutil.rmtree(root / "cache" / "val-2-0")
    (root / "cache" / "train-3-1" / MFCC_FILE).write_bytes(b"broken")
    result = fit(
        manifest, root, load_config(TINY, {"optim.epochs": 1}), tmp_path / "run", device="cpu"
    )
    assert result.skipped["val_missing"] == ["val-2-0"]
    assert result.skipped["train_corrupt"] == ["train-3-1"]
    assert result.history[0]["train"]["samples"] == 11
    doc = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert doc["skipped"]["corrupt_cache"] == ["train-3-1"]
    assert doc["skipped"]["val_missing_cache"] == ["val-2-0"]


@pytest.mark.slow
@pytest.mark.ffmpeg
def test_cli_train_evaluate_predict(data: tuple[Path, Path], tmp_path: Path) -> None:
    from emotions_data.testing.media import make_class_clip

    root, manifest = data
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(
        main,
        [
            "--seed",
            "2",
            "baseline",
            "train",
            "--variant",
            str(manifest),
            "--root",
            str(root),
            "--config",
            str(TINY),
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(run),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "random initialisation" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["best_epoch"] == 1 and summary["select_metric"] == "uar"
    for name in (
        "best.pt",
        "last.pt",
        "config.yaml",
        "metrics.json",
        "val_confusion.png",
        "val_confusion.json",
    ):
        assert (run / name).is_file(), name
    result = runner.invoke(
        main,
        [
            "baseline",
            "evaluate",  # variant and root: the ones recorded in the checkpoint
            "--checkpoint",
            str(run / "best.pt"),
            "--split",
            "test",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("test: n 6, accuracy")
    assert "visual-only accuracy" in result.output and "audio-only accuracy" in result.output
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 6
    assert (run / "test_confusion.png").read_bytes()[:4] == b"\x89PNG"
    clips = [
        make_class_clip(tmp_path / f"clip {c}.mp4", c, width=64, height=64, duration=1.0)
        for c in (1, 4, 2)
    ]
    batched = runner.invoke(
        main,
        [
            "baseline",
            "predict",
            "--checkpoint",
            str(run / "best.pt"),
            *map(str, clips),
            "--batch-size",
            "2",
            "--json",
        ],
    )
    assert batched.exit_code == 0, batched.output
    rows = json.loads(batched.stdout)
    assert [r["video"] for r in rows] == [str(c) for c in clips]
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    single = runner.invoke(
        main,
        [
            "baseline",
            "predict",
            "--checkpoint",
            str(run / "best.pt"),
            *map(str, clips),
            "--batch-size",
            "1",
            "--json",
        ],
    )
    for a, b in zip(rows, json.loads(single.stdout), strict=True):  # batching changes nothing
        assert a["pred"] == b["pred"]
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)
    result = runner.invoke(
        main,
        [
            "baseline",
            "evaluate",
            "--checkpoint",
            str(tmp_path / "none.pt"),
            "--variant",
            str(manifest),
            "--root",
            str(root),
        ],
    )
    assert result.exit_code == 1 and "no such checkpoint" in result.output


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_single_process(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    root, manifest = data
    script = Path(sys.executable).with_name("emotions-data")
    args = [
        "baseline",
        "train",
        "--variant",
        str(manifest),
        "--root",
        str(root),
        "--config",
        str(TINY),
        "--device",
        "cpu",
        "--set",
        "optim.epochs=2",
        "--set",
        "optim.batch_size=4",
        "--set",
        "optim.accumulation=2",
    ]
    config = load_config(TINY, FAST)
    fit(manifest, root, config, tmp_path / "single", device="cpu", seed=0)
    ddp = torchrun(str(script), *args, "--out", str(tmp_path / "ddp"))
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = json.loads((tmp_path / "single" / "metrics.json").read_text())
    two = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert load_checkpoint(tmp_path / "ddp" / "last.pt")["world_size"] == 2
    for a, b in zip(one["epochs"], two["epochs"], strict=True):
        # the same global batches, averaged gradients: equal up to float reduction order
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-9)
        assert a["val"] == pytest.approx(b["val"], abs=1e-9)
        assert a["val"]["n"] == 6


def test_selection_breaks_ties_on_val_loss() -> None:
    from emotions_data.baselines.avcpnet.training_run import is_better

    best = {"epoch": 1, "value": 0.5, "loss": 2.0}
    assert is_better(0.6, 9.0, best)  # a higher UAR wins whatever the loss
    assert is_better(0.5, 1.5, best)  # a tie goes to the lower loss (was: the earliest epoch)
    assert not is_better(0.5, 2.0, best) and not is_better(0.4, 0.1, best)


@pytest.mark.slow
def test_run_records_steps_heads_loss_and_provenance(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    import hashlib

    root, manifest = data
    fit(manifest, root, load_config(TINY, FAST), tmp_path / "run", device="cpu", seed=1)
    doc = json.loads((tmp_path / "run" / "metrics.json").read_text())
    epochs = doc["epochs"]
    assert doc["tie_break"] == "lower val loss"
    assert all(e["val_loss"] > 0 for e in epochs)
    assert {tuple(e["val_heads"]) for e in epochs} == {("fused", "visual_only", "audio_only")}
    assert epochs[0]["val_heads"]["fused"] == epochs[0]["val"]
    # the selected epoch is the best val UAR, the lowest val loss among equal UARs
    ranked = sorted(epochs, key=lambda e: (-e["val"]["uar"], e["val_loss"], e["epoch"]))
    assert doc["best_epoch"] == ranked[0]["epoch"]
    steps = [
        json.loads(line) for line in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()
    ]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5, 6]  # 3 optimizer steps per epoch
    first = steps[0]
    assert {"loss", "loss_fused", "loss_visual", "loss_audio", "lr", "samples_per_s"} <= set(first)
    assert 0 <= first["data_wait_share"] <= 1 and first["data_wait_s"] >= 0
    assert first["loss"] == pytest.approx(
        first["loss_fused"] + first["loss_visual"] + first["loss_audio"], rel=1e-5
    )
    if importlib.util.find_spec("tensorboard") is not None:  # the optional extra
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
        assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
        assert [e.step for e in events.Scalars("epoch/val_uar_audio_only")] == [3, 6]
    origin = load_checkpoint(tmp_path / "run" / "best.pt")["provenance"]
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert origin["manifests"] == {str(manifest.resolve()): digest}
    assert origin["versions"]["torch"] and origin["versions"]["python"]
    head = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if head:  # a git checkout: the commit is recorded
        assert origin["git"]["commit"] == head
