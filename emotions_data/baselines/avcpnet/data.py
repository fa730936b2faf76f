"""The training data: a variant manifest + split over the memory-mapped ``prepare`` cache.

TSN-style sampling: the cache holds ``Sc`` uniform segments of ``Fc`` consecutive frames; the
dataset maps them onto the model's S snippets (loop-padding when Sc < S), takes a random
segment of each of the S parts and a random F-frame window in it when training (the centre
ones when evaluating) and the audio chunk of the same segment. Spatial augmentation
(corner/centre crop, flip, small rotation, brightness) is drawn once per video, from a generator seeded by (seed, epoch, index): a sample
is the same whatever the worker, the process count or a resume, which makes resumed and DDP
runs reproduce single-process ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from emotions_data.baselines.avcpnet.config import DataConfig
from emotions_data.schema.cache import META_FILE, CacheError, read_cache
from emotions_data.schema.errors import ConfigError, ManifestError
from emotions_data.schema.io import read_manifest
from emotions_data.schema.taxonomy import Taxonomy

CROP_SCALES = (1.0, 0.875, 0.75, 0.66)


@dataclass
class SplitItems:
    """The rows of one split with a readable cache, plus those left out (missing or corrupt)."""

    video_ids: list[str]
    labels: list[int]
    taxonomy: Taxonomy
    manifest: Path
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)


def resolve_variant(variant: str | Path) -> Path:
    """A split/variant manifest path, or a folder holding exactly one ``.parquet``."""
    path = Path(variant)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if len(files) != 1:
            names = ", ".join(f.name for f in files) or "none"
            raise ConfigError(
                f"{path}: expected one variant manifest in the folder, found {names}; pass the file"
            )
        return files[0]
    return path


def cache_dir(root: str | Path, video_id: str) -> Path:
    return Path(root) / "cache" / video_id


def load_split(variant: str | Path, split: str, root: str | Path) -> SplitItems:
    """Read the ``split`` rows of a variant manifest; rows whose cache is missing or corrupt are
    counted, not used (a split left with no row at all is a ``ConfigError``).

    Each cache is opened memory-mapped (headers and sizes only, cheap), so broken ones are left
    out before training: under DDP a rank whose whole micro-batch failed at load time would
    otherwise have nothing to back-propagate. Failures at load time are still skipped.
    """
    path = resolve_variant(variant)
    manifest = read_manifest(path, "split")
    tax = manifest.taxonomy
    rows = manifest.df[manifest.df["split"] == split]
    if rows.empty:
        raise ManifestError([f"{path}: no rows in split {split!r}"])
    ids, labels, missing, corrupt = [], [], [], []
    for video_id, label in zip(rows["video_id"], rows["label"], strict=True):
        folder = cache_dir(root, video_id)
        if not (folder / META_FILE).is_file():
            missing.append(str(video_id))
            continue
        try:
            read_cache(folder, mmap=True)
        except (CacheError, OSError, ValueError):
            corrupt.append(str(video_id))
            continue
        ids.append(str(video_id))
        labels.append(tax.index(str(label)))
    if not ids:
        # nothing to train or evaluate on (most often a wrong --root): an error, not a silent
        # run that "selects" an epoch with accuracy 0
        raise ConfigError(
            f"{path}: none of the {len(rows)} {split!r} rows has a readable cache under "
            f"{Path(root) / 'cache'} ({len(missing)} missing, {len(corrupt)} corrupt); "
            "check --root or run prepare"
        )
    return SplitItems(ids, labels, tax, path, missing, corrupt)


def _segment_indices(
    cache_segments: int, snippets: int, rng: np.random.Generator | None = None
) -> npt.NDArray[np.int64]:
    """The cache segment behind each of the S snippets: S equal parts of the cache's segments.

    Evaluating (``rng`` None) takes the centre of each part; training takes a random segment of
    each part (TSN), so a cache with more segments than snippets is seen whole across epochs.
    Repeats (loop-pads) if Sc < S.
    """
    if rng is not None and cache_segments > snippets:
        edges = np.floor(np.arange(snippets + 1) * cache_segments / snippets).astype(np.int64)
        return np.asarray(rng.integers(edges[:-1], edges[1:]), dtype=np.int64)
    return np.floor((np.arange(snippets) + 0.5) * cache_segments / snippets).astype(np.int64)


def _frame_indices(cache_frames: int, frames: int, start: int) -> npt.NDArray[np.int64]:
    return (start + np.arange(frames)) % cache_frames  # loop-pad a short segment


def _audio_chunks(
    feature: npt.NDArray[np.float32], cache_segments: int, segments: Sequence[int], length: int
) -> Tensor:
    """The audio chunk of each chosen segment, resampled to ``length`` steps and standardised."""
    bins, total = feature.shape
    out = torch.zeros(len(segments), bins, length)
    if total == 0:
        return out
    full = torch.from_numpy(np.array(feature, dtype=np.float32))  # a writable copy
    std = float(full.std())
    if std < 1e-6:  # silent / no audio: all-zero features stay zero
        return out
    full = (full - full.mean()) / std
    for i, seg in enumerate(segments):
        lo = math.floor(seg * total / cache_segments)
        hi = max(lo + 1, math.floor((seg + 1) * total / cache_segments))
        chunk = full[:, lo:hi].unsqueeze(0)
        out[i] = F.interpolate(chunk, size=length, mode="linear", align_corners=False)[0]
    return out


def spatial_transform(
    frames: Tensor, size: int, rng: np.random.Generator | None, config: DataConfig
) -> tuple[Tensor, Tensor]:
    """Crop/resize/flip (N, H, W, 3) uint8 frames with one draw for the whole video.

    Returns the frames and ``(angle_deg, brightness)``: rotation and brightness are drawn here
    but applied to the whole batch on the training device (``photometric``), where they are
    cheap, instead of per clip in a loader worker, where they cost more than everything else.
    """
    from torchvision.transforms.v2 import functional as TF

    x = frames.permute(0, 3, 1, 2)  # (N, 3, H, W)
    h, w = x.shape[-2:]
    side = min(h, w)
    aug = torch.tensor([0.0, 1.0])
    if rng is None:
        crop = side
        top, left = (h - crop) // 2, (w - crop) // 2
    else:
        crop = max(1, round(side * float(rng.choice(CROP_SCALES))))
        corner = int(rng.integers(5))  # 0 centre, 1-4 corners
        top = [(h - crop) // 2, 0, 0, h - crop, h - crop][corner]
        left = [(w - crop) // 2, 0, w - crop, 0, w - crop][corner]
    x = x[..., top : top + crop, left : left + crop]
    if crop != size:
        x = TF.resize(x, [size, size], antialias=crop > size)
    if rng is not None:
        if rng.random() < 0.5:
            x = TF.horizontal_flip(x)
        angle = float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
        factor = 1.0 + float(rng.uniform(-config.max_brightness, config.max_brightness))
        aug = torch.tensor([angle, factor])
    return x.permute(0, 2, 3, 1).contiguous(), aug


def photometric(video: Tensor, aug: Tensor) -> Tensor:
    """Rotate each video by its angle and scale its brightness, on whatever device it is.

    ``video`` uint8 (B, S, F, H, W, 3), ``aug`` (B, 2) of (angle_deg, brightness). Returns a
    float tensor in [0, 255] (the model accepts uint8 or float), or the input unchanged when
    no sample is augmented (evaluation).
    """
    angle, factor = aug[:, 0].float(), aug[:, 1].float()
    if bool(torch.all(angle == 0)) and bool(torch.all(factor == 1)):
        return video
    b, s, f, h, w, c = video.shape
    x = video.permute(0, 1, 2, 5, 3, 4).reshape(b, s * f * c, h, w).float()
    rad = torch.deg2rad(angle)
    cos, sin, zero = torch.cos(rad), torch.sin(rad), torch.zeros_like(rad)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, [b, s * f * c, h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    x = (x * factor.view(b, 1, 1, 1)).clamp_(0, 255)
    return x.reshape(b, s, f, c, h, w).permute(0, 1, 2, 4, 5, 3)


class CacheClipDataset(Dataset[dict[str, Any] | None]):
    """Samples of one split: ``video`` uint8 (S, F, size, size, 3), ``audio`` (S, bins, T)."""

    def __init__(
        self,
        items: SplitItems,
        root: str | Path,
        config: DataConfig,
        *,
        train: bool,
        seed: int = 0,
    ) -> None:
        self.items = items
        self.root = Path(root)
        self.config = config
        self.train = train
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items.video_ids)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        video_id = self.items.video_ids[index]
        try:
            entry = read_cache(cache_dir(self.root, video_id), mmap=True, check_values=True)
            return self._sample(index, entry)
        except (CacheError, OSError, ValueError) as exc:
            # a missing or corrupt cache is skipped and counted by the collate function
            return {"skipped": video_id, "reason": str(exc)}

    def _sample(self, index: int, entry: Any) -> dict[str, Any]:
        cfg = self.config
        rng = (
            np.random.default_rng([self.seed, self.epoch, index])
            if self.train and cfg.augment
            else None
        )
        sc, fc = entry.frames.shape[:2]
        segments = _segment_indices(sc, cfg.snippets, rng)
        clips = []
        for seg in segments:
            if fc > cfg.frames:
                start = (
                    int(rng.integers(fc - cfg.frames + 1))
                    if rng is not None
                    else (fc - cfg.frames) // 2
                )
            else:
                start = 0
            clips.append(np.asarray(entry.frames[seg, _frame_indices(fc, cfg.frames, start)]))
        frames = torch.from_numpy(np.stack(clips))  # (S, F, H, W, 3)
        s, f, h, w, _ = frames.shape
        video, aug = spatial_transform(frames.reshape(s * f, h, w, 3), cfg.size, rng, cfg)
        feature = entry.mfcc if cfg.audio_feature == "mfcc" else entry.logmel
        audio = _audio_chunks(np.asarray(feature), sc, segments.tolist(), cfg.audio_chunk)
        return {
            "video": video.reshape(s, f, cfg.size, cfg.size, 3),
            "audio": audio,
            "aug": aug,
            "label": self.items.labels[index],
            "index": index,
        }


@dataclass
class Batch:
    video: Tensor
    audio: Tensor
    aug: Tensor
    label: Tensor
    index: Tensor
    skipped: list[str]
    skip_reasons: dict[str, str] = field(default_factory=dict)  # video_id -> why

    def __len__(self) -> int:
        return int(self.label.shape[0])


def collate(samples: list[dict[str, Any] | None]) -> Batch:
    """Stack the good samples; record the skipped ones (never crash on one bad cache)."""
    good = [s for s in samples if s is not None and "skipped" not in s]
    reasons = {
        str(s["skipped"]): str(s["reason"]) for s in samples if s is not None and "skipped" in s
    }
    skipped = list(reasons)
    if not good:
        empty = torch.zeros(0)
        return Batch(empty, empty, empty, empty.long(), empty.long(), skipped, reasons)
    return Batch(
        video=torch.stack([s["video"] for s in good]),
        audio=torch.stack([s["audio"] for s in good]),
        aug=torch.stack([s["aug"] for s in good]),
        label=torch.tensor([s["label"] for s in good], dtype=torch.long),
        index=torch.tensor([s["index"] for s in good], dtype=torch.long),
        skipped=skipped,
        skip_reasons=reasons,
    )


def worker_init(_: int) -> None:
    torch.set_num_threads(1)  # each loader worker decodes one clip; no nested thread pools
