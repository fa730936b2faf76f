"""A learnable synthetic audio-visual set (ffmpeg colours, motion and tones per class), through
prepare's cache builder, then ``baseline train`` with tiny.yaml: val accuracy must reach 0.9.

The clips of one class are identical by design, so ``prepare()`` itself would (rightly) drop
them as duplicates; each clip goes through ``build_cache_for_file``, the same decode and
features as ``prepare``, instead.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.ingest.prepare import PrepareConfig, build_cache_for_file
from emotions_data.schema import write_manifest
from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.testing.media import make_class_clip

TINY = Path(__file__).parents[2] / "baselines" / "configs" / "tiny.yaml"
PER_SPLIT = {"train": 4, "val": 2}
# a tiny cache: 4 segments x 6 frames at 48 px, enough for tiny.yaml's 4 x 4 at 32 px
PREPARE = PrepareConfig(segments=4, frames_per_segment=6, cache_size=48, short_side=64, fps=10)


def _make(root: Path, video_id: str, class_index: int) -> None:
    clip = make_class_clip(
        root / "media" / f"{video_id}.mp4", class_index, width=64, height=64, duration=1.0
    )
    build_cache_for_file(clip, root / "cache" / video_id, video_id, PREPARE)


@pytest.mark.slow
@pytest.mark.ffmpeg
def test_tiny_config_learns_the_synthetic_set(tmp_path: Path) -> None:
    tax = load_taxonomy()
    rows = [
        {"video_id": f"{split}-{c}-{k}", "label": label, "split": split, "fold": None}
        for split, n in PER_SPLIT.items()
        for c, label in enumerate(tax.classes)
        for k in range(n)
    ]
    with ThreadPoolExecutor(2) as pool:  # ffmpeg subprocesses: threads are enough
        list(pool.map(lambda r: _make(tmp_path, r["video_id"], tax.index(r["label"])), rows))
    manifest = write_manifest(pd.DataFrame(rows), tmp_path / "variants" / "full.parquet", "split")
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "--seed",
            "0",
            "baseline",
            "train",
            "--variant",
            str(manifest),
            "--root",
            str(tmp_path),
            "--config",
            str(TINY),
            "--device",
            "cpu",
            "--out",
            str(run),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["val"]["n"] == 12
    assert summary["val"]["accuracy"] >= 0.9, summary["val"]["confusion_matrix"]
    doc = json.loads((run / "metrics.json").read_text())
    assert doc["selected_on"] == "val" and len(doc["epochs"]) == 5
