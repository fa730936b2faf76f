"""Seeded, generated training caches and split manifests (tests, benchmarks/gpu_check.py); no media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emotions_data.schema import write_manifest
from emotions_data.schema.cache import CacheMeta, write_cache
from emotions_data.schema.taxonomy import load_taxonomy

# one RGB colour per class: a colour is what a tiny visual branch learns fastest
COLOURS = np.array(
    [[220, 40, 40], [40, 40, 220], [40, 200, 40], [220, 220, 40], [200, 40, 200], [40, 200, 200]]
)


def synthetic_cache(
    folder: Path,
    video_id: str,
    class_index: int,
    rng: np.random.Generator,
    *,
    segments: int = 4,
    frames: int = 6,
    side: int = 36,
    steps: int = 200,
) -> None:
    """A cache whose colour and audio band encode ``class_index`` (plus noise)."""
    base = COLOURS[class_index % len(COLOURS)]
    noise = rng.normal(0, 25, (segments, frames, side, side, 3))
    clip = np.clip(base + noise, 0, 255).astype(np.uint8)
    logmel = rng.normal(0, 1, (64, steps)).astype(np.float32)
    logmel[8 * class_index : 8 * class_index + 8] += 4.0
    mfcc = rng.normal(0, 1, (32, steps)).astype(np.float32)
    mfcc[4 * class_index : 4 * class_index + 4] += 4.0
    meta = CacheMeta(
        video_id=video_id,
        n_segments=segments,
        frames_per_segment=frames,
        height=side,
        width=side,
        duration_s=2.0,
        source_fps=10.0,
        has_audio=True,
    )
    write_cache(folder, meta, clip, logmel, mfcc)


def synthetic_dataset(
    root: Path,
    *,
    per_class: dict[str, int],
    classes: int = 6,
    seed: int = 0,
    segments: int = 4,
    frames: int = 6,
    side: int = 36,
) -> Path:
    """Caches under ``root/cache`` and a split manifest ``root/variants/full.parquet``."""
    tax = load_taxonomy()
    rng = np.random.default_rng(seed)
    rows = []
    for split, n in per_class.items():
        for c in range(classes):
            for k in range(n):
                video_id = f"{split}-{c}-{k}"
                synthetic_cache(
                    root / "cache" / video_id,
                    video_id,
                    c,
                    rng,
                    segments=segments,
                    frames=frames,
                    side=side,
                )
                rows.append({"video_id": video_id, "label": tax.classes[c], "split": split})
    frame = pd.DataFrame(rows)
    frame["fold"] = None
    return write_manifest(frame, root / "variants" / "full.parquet", "split")
