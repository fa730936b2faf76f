"""Crafted cache files and a diverging run: skipped and counted, or one-line errors, never a
traceback or a NaN model (issue 13, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from emotions_data.baselines.avcpnet import load_config
from emotions_data.baselines.avcpnet.config import DataConfig
from emotions_data.baselines.avcpnet.data import CacheClipDataset, collate, load_split
from emotions_data.baselines.avcpnet.epoch import TrainingError
from emotions_data.baselines.avcpnet.trainer import fit
from emotions_data.cli import main
from emotions_data.schema.cache import (
    FRAMES_FILE,
    LOGMEL_FILE,
    META_FILE,
    MFCC_FILE,
    CacheError,
    read_cache,
)
from tests.baselines.synthetic import synthetic_dataset

TINY = Path(__file__).parents[2] / "baselines" / "configs" / "tiny.yaml"
CFG = DataConfig(snippets=4, frames=4, size=32, audio_feature="logmel", audio_chunk=16, workers=0)


def _header_replaced(path: Path, old: bytes, new: bytes) -> None:
    raw = path.read_bytes()
    end = raw.index(b"\n") + 1  # the header is one line ending in a newline
    header = raw[:end].replace(old, new)
    assert header != raw[:end], (old, raw[:end])
    path.write_bytes(header + raw[end:])


def _with_nan(path: Path) -> None:
    values = np.load(path)
    values[3, 7] = np.nan
    np.save(path, values)


CRAFTED = {
    # name: (file, how to break it, what the one-line error says)
    "empty file": (FRAMES_FILE, lambda p: p.write_bytes(b""), "No data left"),
    "negative shape": (
        FRAMES_FILE,
        lambda p: _header_replaced(p, b"(4, 6,", b"(4, -6,"),
        "corrupt cache array",
    ),
    "shape bigger than the file": (
        LOGMEL_FILE,
        lambda p: _header_replaced(p, b"(64, ", b"(99999999, "),
        "corrupt cache array",
    ),
    "bad magic": (MFCC_FILE, lambda p: p.write_bytes(b"\x93NUMPX" + p.read_bytes()[6:]), "corrupt"),
    "float64 features": (
        MFCC_FILE,
        lambda p: np.save(p, np.load(p).astype(np.float64)),
        "mfcc is float64",
    ),
    "steps differ": (
        LOGMEL_FILE,
        lambda p: np.save(p, np.load(p)[:, :-1]),
        "logmel has 199 steps but mfcc 200",
    ),
    "meta sizes not integers": (
        META_FILE,
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "height": "36"})),
        "sizes must be integers",
    ),
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    synthetic_dataset(tmp_path, per_class={"train": 2, "val": 1}, classes=2)
    return tmp_path


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_cache_file_is_a_one_line_cache_error(root: Path, case: str) -> None:
    name, breaker, message = CRAFTED[case]
    folder = root / "cache" / "train-0-0"
    breaker(folder / name)
    with pytest.raises(CacheError, match=message) as info:
        read_cache(folder, mmap=True)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)
    # counted by the up-front check, not trained on
    items = load_split(root / "variants" / "full.parquet", "train", root)
    assert items.corrupt == ["train-0-0"]


def test_non_finite_features_are_skipped_with_their_reason(root: Path) -> None:
    _with_nan(root / "cache" / "train-0-1" / LOGMEL_FILE)
    np.save(root / "cache" / "train-1-0" / MFCC_FILE, np.full((32, 200), np.inf, np.float32))
    # header-only checks pass (a NaN is a valid float32): the values are checked when read
    items = load_split(root / "variants" / "full.parquet", "train", root)
    assert items.corrupt == []
    with pytest.raises(CacheError, match="logmel holds 1 non-finite value"):
        read_cache(root / "cache" / "train-0-1", check_values=True)
    dataset = CacheClipDataset(items, root, CFG, train=True)
    batch = collate([dataset[i] for i in range(len(dataset))])
    # logmel is the feature CFG trains on, but a NaN in either feature is refused
    assert batch.skipped == ["train-0-1", "train-1-0"]
    assert "non-finite" in batch.skip_reasons["train-0-1"]
    assert len(batch) == 2 and bool(batch.audio.isfinite().all())


def test_training_skips_and_reports_bad_values(root: Path, tmp_path: Path) -> None:
    for video_id in ("train-1-1", "val-0-0", "val-1-0"):  # the whole val split, too
        _with_nan(root / "cache" / video_id / LOGMEL_FILE)
    config = load_config(TINY, {"optim.epochs": 1, "optim.batch_size": 2})
    result = fit(root / "variants", root, config, tmp_path / "run", device="cpu")
    assert result.skipped["train_corrupt"] == ["train-1-1"]
    assert result.history[0]["train"]["samples"] == 3
    doc = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert doc["skipped"]["corrupt_cache"] == ["train-1-1", "val-0-0", "val-1-0"]
    assert "non-finite" in doc["skipped"]["reasons"]["train-1-1"]
    # nothing left to validate on: reported as such, not a crash on a missing val loss
    assert doc["epochs"][0]["val"]["n"] == 0 and doc["epochs"][0]["val_loss"] is None


def test_a_non_finite_loss_stops_training_naming_the_step(root: Path, tmp_path: Path) -> None:
    # finite values, but so large that standardising them overflows float32: the loss is NaN
    # although every cache passes the value check
    path = root / "cache" / "train-1-0" / LOGMEL_FILE
    np.save(path, np.full_like(np.load(path), 3e38))
    config = load_config(TINY, {"optim.epochs": 1, "optim.batch_size": 2})
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) at epoch 1, optimizer step"):
        fit(root / "variants", root, config, tmp_path / "run", device="cpu")
    assert not (tmp_path / "run" / "last.pt").exists()  # no NaN model written
    result = CliRunner().invoke(
        main,
        [
            "baseline",
            "train",
            "--variant",
            str(root / "variants"),
            "--root",
            str(root),
            "--config",
            str(TINY),
            "--set",
            "optim.epochs=1",
            "--set",
            "optim.batch_size=2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "cli"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: non-finite loss") and "Traceback" not in result.output
