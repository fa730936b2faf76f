"""Small, seeded manifests for tests and benchmarks (the documented examples live in
``schema.examples``; ``example_frames`` is re-exported here for the tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emotions_data.schema.examples import example_frames
from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy

__all__ = ["example_frames", "synthetic_crowd", "synthetic_videos"]


def synthetic_crowd(
    n_items: int,
    *,
    n_annotators: int = 60,
    min_judgements: int = 3,
    max_judgements: int = 10,
    accuracy_range: tuple[float, float] = (0.5, 0.95),
    taxonomy: Taxonomy | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.Series]:
    """A long-format crowd (video_id, annotator_id, label) with known truth, fully vectorised.

    Each annotator answers correctly with their own accuracy and otherwise picks a uniformly
    random wrong class. Returns ``(annotations, truth)``; truth is indexed by video_id.
    """
    tax = taxonomy or load_taxonomy()
    k = len(tax.classes)
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    acc = rng.uniform(*accuracy_range, n_annotators)
    counts = rng.integers(min_judgements, max_judgements + 1, n_items)
    item = np.repeat(np.arange(n_items), counts)
    # distinct annotators per item: a random permutation prefix via argsort of random keys
    keys = rng.random((n_items, n_annotators)).argsort(axis=1)
    offsets = np.arange(len(item)) - np.repeat(np.cumsum(counts) - counts, counts)
    worker = keys[item, offsets]
    correct = rng.random(len(item)) < acc[worker]
    wrong = (truth[item] + rng.integers(1, k, len(item))) % k
    label = np.where(correct, truth[item], wrong)
    classes = np.array(tax.classes)
    ids = np.char.add("v", np.arange(n_items).astype(str))
    frame = pd.DataFrame(
        {
            "video_id": ids[item],
            "annotator_id": np.char.add("w", worker.astype(str)),
            "label": classes[label],
        }
    )
    return frame, pd.Series(classes[truth], index=ids, name="truth")


#: Class shares of a synthetic eMotions-like corpus (skewed, as platforms are).
SKEWED_SHARES = (0.28, 0.07, 0.24, 0.19, 0.13, 0.09)


def synthetic_videos(
    n_videos: int,
    *,
    duplicate_share: float = 0.05,
    platforms: tuple[str, ...] = ("douyin", "kuaishou", "tiktok"),
    taxonomy: Taxonomy | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.Series]:
    """An eMotions-shaped videos manifest without media, and the true class of each video.

    ``n_videos`` rows are ``ok``; ``duplicate_share`` of that many more are near-duplicate
    reposts (``duplicate``, ``dup_of`` the kept copy) on another platform. Uploaders have a
    Zipf-like number of videos (most one or two, a few hundreds) and each prefers one class;
    the classes are skewed (``SKEWED_SHARES``). Fully vectorised and seeded. Returns
    ``(videos, truth)``; truth is indexed by video_id (ok videos only).
    """
    tax = taxonomy or load_taxonomy()
    classes = np.array(tax.classes)
    rng = np.random.default_rng(seed)
    shares = np.resize(np.array(SKEWED_SHARES), len(classes))
    shares = shares / shares.sum()
    # Uploaders: Zipf-distributed video counts, capped, until n_videos are covered.
    counts = np.minimum(rng.zipf(2.0, n_videos), n_videos // 200 + 300)
    counts = counts[: int(np.searchsorted(np.cumsum(counts), n_videos)) + 1]
    uploader = np.repeat(np.arange(len(counts)), counts)[:n_videos]
    rng.shuffle(uploader)
    favourite = rng.choice(len(classes), len(counts), p=shares)
    own = rng.random(n_videos) < 0.5  # half of an uploader's videos show its favourite class
    label = np.where(own, favourite[uploader], rng.choice(len(classes), n_videos, p=shares))
    plat_of_uploader = rng.integers(0, len(platforms), len(counts))
    platform = np.array(platforms)[plat_of_uploader[uploader]]
    native = rng.choice(10**12, n_videos, replace=False) + 7 * 10**12
    video_id = np.char.add(np.char.add(platform.astype(str), "-"), native.astype(str))
    n_dup = round(n_videos * duplicate_share)
    kept = rng.choice(n_videos, n_dup, replace=False)
    shift = rng.integers(1, len(platforms), n_dup)
    dup_platform = np.array(platforms)[
        (np.searchsorted(np.array(platforms), platform[kept]) + shift) % len(platforms)
    ]
    dup_native = rng.choice(10**12, n_dup, replace=False) + 8 * 10**12
    dup_id = np.char.add(np.char.add(dup_platform.astype(str), "-"), dup_native.astype(str))
    ids = np.concatenate([video_id, dup_id])
    plats = np.concatenate([platform, dup_platform])
    n = len(ids)
    portrait = rng.random(n) < 0.8
    short = np.where(rng.random(n) < 0.7, 720, 1080)
    long = (short * 16) // 9
    fetched = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 86_400 * 60, n), unit="s"
    )
    videos = pd.DataFrame(
        {
            "video_id": ids,
            "platform": plats,
            "source_url": np.char.add("https://example.org/v/", ids.astype(str)),
            "status": np.where(np.arange(n) < n_videos, "ok", "duplicate"),
            "error_kind": None,
            "error_message": None,
            "media_path": np.char.add(
                np.char.add(np.char.add("media/", plats.astype(str)), "/"),
                np.char.add(ids.astype(str), ".mp4"),
            ),
            "sha256": [f"{i:064x}" for i in rng.integers(0, 2**62, n)],
            "bytes": rng.integers(500_000, 20_000_000, n),
            "duration_s": np.round(rng.gamma(4.0, 4.0, n) + 3.0, 2),
            "width": np.where(portrait, short, long).astype(np.int32),
            "height": np.where(portrait, long, short).astype(np.int32),
            "fps": rng.choice([25.0, 30.0, 60.0], n, p=[0.3, 0.6, 0.1]),
            "has_audio": rng.random(n) < 0.97,
            "audio_sample_rate": 44100,
            "video_codec": "h264",
            "audio_codec": "aac",
            "uploader_id": np.char.add("u", np.concatenate([uploader, uploader[kept]]).astype(str)),
            "upload_date": "20240101",
            "fetched_at": fetched,
            "dup_of": np.concatenate([np.full(n_videos, None), video_id[kept]]),
        }
    )
    truth = pd.Series(classes[label], index=video_id, name="label")
    return videos, truth
