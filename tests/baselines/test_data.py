"""The cache dataset: TSN sampling, per-video augmentation, aligned audio, skipped caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from emotions_data.baselines.avcpnet.config import DataConfig
from emotions_data.baselines.avcpnet.data import (
    CacheClipDataset,
    SplitItems,
    _audio_chunks,
    _segment_indices,
    collate,
    load_split,
    resolve_variant,
)
from emotions_data.schema import write_manifest
from emotions_data.schema.cache import FRAMES_FILE
from emotions_data.schema.errors import ConfigError, ManifestError
from emotions_data.schema.taxonomy import load_taxonomy
from tests.baselines.synthetic import synthetic_dataset

CFG = DataConfig(snippets=4, frames=4, size=32, audio_feature="logmel", audio_chunk=16, workers=0)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    synthetic_dataset(root, per_class={"train": 2, "val": 1}, classes=3)
    return root


def test_segments_cover_the_cache_and_loop_pad() -> None:
    assert _segment_indices(16, 4).tolist() == [2, 6, 10, 14]
    assert _segment_indices(4, 4).tolist() == [0, 1, 2, 3]
    assert _segment_indices(2, 4).tolist() == [0, 0, 1, 1]  # fewer segments than snippets


def test_audio_chunks_follow_the_segments() -> None:
    feature = np.repeat(np.arange(4, dtype=np.float32), 25)[None, :].repeat(8, axis=0)
    chunks = _audio_chunks(feature, 4, [0, 1, 2, 3], 10)
    means = chunks.mean(dim=(1, 2))
    assert torch.all(means[1:] > means[:-1])  # chunk i is segment i's time span
    assert torch.allclose(chunks[2], chunks[2][0, 0].expand_as(chunks[2]))  # no bleed
    assert torch.count_nonzero(_audio_chunks(np.zeros((8, 100), np.float32), 4, [0, 1], 10)) == 0


def test_sample_shapes_and_determinism(dataset_root: Path) -> None:
    items = load_split(dataset_root / "variants", "train", dataset_root)
    train = CacheClipDataset(items, dataset_root, CFG, train=True, seed=3)
    sample = train[0]
    assert sample is not None and "skipped" not in sample
    assert sample["video"].dtype == torch.uint8
    assert tuple(sample["video"].shape) == (4, 4, 32, 32, 3)
    assert tuple(sample["audio"].shape) == (4, 64, 16)
    angle, brightness = sample["aug"].tolist()
    assert abs(angle) <= CFG.max_rotation_deg and abs(brightness - 1) <= CFG.max_brightness
    again = train[0]
    assert again is not None and torch.equal(
        sample["video"], again["video"]
    )  # (seed, epoch, index)
    train.set_epoch(1)
    other = train[0]
    assert other is not None and not torch.equal(sample["video"], other["video"])
    evaluation = CacheClipDataset(items, dataset_root, CFG, train=False)
    a, b = evaluation[0], evaluation[0]
    assert a is not None and b is not None and torch.equal(a["video"], b["video"])
    assert a["aug"].tolist() == [0.0, 1.0]


def test_missing_and_corrupt_caches_are_skipped_and_counted(tmp_path: Path) -> None:
    root = tmp_path
    synthetic_dataset(root, per_class={"train": 2, "val": 1}, classes=2)
    import shutil

    shutil.rmtree(root / "cache" / "train-0-0")
    (root / "cache" / "train-1-1" / FRAMES_FILE).write_bytes(b"\x93NUMPY garbage")
    items = load_split(root / "variants" / "full.parquet", "train", root)
    assert items.missing == ["train-0-0"]
    assert items.corrupt == ["train-1-1"]  # found by the up-front check
    assert items.video_ids == ["train-0-1", "train-1-0"]
    # broken after the check (e.g. the disk): skipped at load time, never a crash
    (root / "cache" / "train-1-0" / FRAMES_FILE).write_bytes(b"truncated")
    dataset = CacheClipDataset(items, root, CFG, train=True)
    batch = collate([dataset[i] for i in range(len(dataset))])
    assert batch.skipped == ["train-1-0"]
    assert len(batch) == 1 and batch.video.shape[0] == 1


def test_a_split_without_any_cache_is_an_error(dataset_root: Path, tmp_path: Path) -> None:
    # a wrong --root used to give a "trained" run on nothing, with exit code 0
    with pytest.raises(ConfigError, match=r"none of the 6 'train' rows has a readable cache"):
        load_split(dataset_root / "variants", "train", tmp_path)


def test_variant_resolution_and_empty_split(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected one variant manifest"):
        resolve_variant(tmp_path)
    frame = pd.DataFrame({"video_id": ["a"], "label": ["fear"], "split": ["train"], "fold": [None]})
    path = write_manifest(frame, tmp_path / "v.parquet", "split")
    assert resolve_variant(tmp_path) == path
    with pytest.raises(ManifestError, match="no rows in split 'val'"):
        load_split(path, "val", tmp_path)


def test_labels_follow_the_manifest_taxonomy(dataset_root: Path) -> None:
    items: SplitItems = load_split(dataset_root / "variants", "val", dataset_root)
    tax = load_taxonomy()
    assert [tax.classes[i] for i in items.labels] == ["excitation", "fear", "neutral"]


def test_photometric_rotates_and_scales_on_the_device() -> None:
    from emotions_data.baselines.avcpnet.data import photometric

    video = torch.full((2, 1, 1, 8, 8, 3), 100, dtype=torch.uint8)
    video[1, ..., :, :4, :] = 0  # left half dark
    same = photometric(video, torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert same is video  # evaluation: untouched
    out = photometric(video, torch.tensor([[0.0, 0.5], [180.0, 1.0]]))
    assert out.dtype == torch.float32
    assert torch.allclose(out[0], torch.full_like(out[0], 50.0))
    # a half-turn moves the dark half to the right
    assert out[1, 0, 0, 4, :4, 0].mean() > 90 and out[1, 0, 0, 4, 4:, 0].mean() < 10


def test_training_draws_a_random_segment_of_each_part(tmp_path: Path) -> None:
    # 8 cache segments, each filled with its own index, onto 2 snippets: training must see
    # every segment of each half across epochs (TSN), evaluation always the centre ones
    from emotions_data.schema.cache import CacheMeta, write_cache

    sc, fc, side = 8, 4, 16
    frames = np.broadcast_to(
        np.arange(sc, dtype=np.uint8)[:, None, None, None, None] * 10, (sc, fc, side, side, 3)
    ).copy()
    meta = CacheMeta("v", sc, fc, side, side, 4.0, 8.0, has_audio=False)
    write_cache(
        tmp_path / "cache" / "v",
        meta,
        frames,
        np.zeros((64, 40), np.float32),
        np.zeros((32, 40), np.float32),
    )
    items = SplitItems(["v"], [0], load_taxonomy(None), tmp_path / "m.parquet")
    cfg = DataConfig(snippets=2, frames=4, size=8, audio_chunk=4, workers=0)
    train = CacheClipDataset(items, tmp_path, cfg, train=True, seed=0)
    seen: list[set[int]] = [set(), set()]
    for epoch in range(40):
        train.set_epoch(epoch)
        sample = train[0]
        assert sample is not None and "skipped" not in sample
        for k in range(2):
            seen[k].add(int(sample["video"][k].float().mean().item()) // 10)
    assert seen == [{0, 1, 2, 3}, {4, 5, 6, 7}]
    sample = CacheClipDataset(items, tmp_path, cfg, train=False)[0]
    assert sample is not None
    assert [int(sample["video"][k].float().mean().item()) // 10 for k in range(2)] == [2, 6]
    assert _segment_indices(8, 2).tolist() == [2, 6]


def test_the_paper_setting_sees_different_frames_each_epoch() -> None:
    # prepare's default cache keeps 2 segments per snippet of the paper model: each epoch draws
    # one of the 2 in every part (16 x 8 cached for 16 x 8 used gave the same frames forever)
    from emotions_data.baselines.avcpnet import load_config
    from emotions_data.ingest.prepare import PrepareConfig, load_prepare_config

    repo = Path(__file__).parents[2]
    paper = load_config(repo / "baselines" / "configs" / "avcpnet.yaml").data
    for prepared in (PrepareConfig(), load_prepare_config(repo / "configs" / "prepare.yaml")):
        assert prepared.segments >= 2 * paper.snippets
        assert prepared.frames_per_segment >= paper.frames
    draws = {
        tuple(_segment_indices(32, paper.snippets, np.random.default_rng([0, epoch, 7])).tolist())
        for epoch in range(5)
    }
    assert len(draws) == 5
