"""A small, seeded labelled dataset root written with the real manifest writers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from emotions_data.schema import load_taxonomy, write_manifest

PLATFORMS = ("douyin", "kuaishou", "tiktok")
STAGES = ("primary", "cross_check_a")


def labelled_frames(n: int = 150, seed: int = 0) -> dict[str, pd.DataFrame]:
    """videos (with failed, filtered and duplicate rows), annotations, labels and groups."""
    rng = np.random.default_rng(seed)
    classes = load_taxonomy().classes
    # imbalanced classes, every class present
    probs = np.array([0.3, 0.1, 0.2, 0.15, 0.1, 0.15])
    truth = rng.choice(len(classes), size=n, p=probs)
    truth[: len(classes)] = np.arange(len(classes))
    ids = [f"{PLATFORMS[i % 3]}-{1000 + i}" for i in range(n)]
    # most uploaders have one video; a few prolific ones (u0..u9) have several
    shared = rng.random(n) < 0.3
    uploaders = [f"u{int(rng.integers(0, 10))}" if s else f"solo{i}" for i, s in enumerate(shared)]
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    videos = pd.DataFrame(
        {
            "video_id": ids,
            "platform": [PLATFORMS[i % 3] for i in range(n)],
            "source_url": [f"https://example.invalid/{v}.mp4" for v in ids],
            "status": "ok",
            "media_path": [f"media/{v}.mp4" for v in ids],
            "sha256": [f"{i:064x}" for i in range(n)],
            "bytes": 10_000 + rng.integers(0, 1000, n),
            "duration_s": rng.uniform(3, 60, n).round(2),
            "width": np.where(rng.random(n) < 0.8, 720, 1280).astype(np.int32),
            "fps": 30.0,
            "has_audio": True,
            "uploader_id": uploaders,
            "fetched_at": t0,
        }
    )
    videos["height"] = np.where(videos["width"] == 720, 1280, 720).astype(np.int32)
    extra = pd.DataFrame(
        {
            "video_id": ["tiktok-dup1", "douyin-dup2", "tiktok-dead1", "kuaishou-short1"],
            "platform": ["tiktok", "douyin", "tiktok", "kuaishou"],
            "source_url": [f"https://example.invalid/x{i}.mp4" for i in range(4)],
            "status": ["duplicate", "duplicate", "failed", "filtered"],
            "error_kind": [None, None, "unavailable", "filtered"],
            "dup_of": [ids[0], ids[1], None, None],
            "uploader_id": ["z1", "z2", None, None],
        }
    )
    videos = pd.concat([videos, extra], ignore_index=True)
    rows = []
    for i, v in enumerate(ids):
        for stage in STAGES:
            for a in range(3):
                good = rng.random() < 0.9
                lab = truth[i] if good else rng.integers(0, len(classes))
                rows.append(
                    (
                        v,
                        f"a{(i + a + (3 if stage != 'primary' else 0)) % 12:02d}",
                        stage,
                        classes[lab],
                    )
                )
    ann = pd.DataFrame(rows, columns=["video_id", "annotator_id", "stage", "label"])
    ann["source"] = "simulated"
    ann["created_at"] = t0
    ann["group_id"] = ann["annotator_id"].map(lambda a: "ABC"[int(a[1:]) % 3])
    votes = ann.groupby(["video_id", "label"]).size().unstack(fill_value=0)
    top = votes.idxmax(axis=1)
    support = votes.max(axis=1) / votes.sum(axis=1)
    disputed = support < 0.7
    expert = ann[ann["video_id"].isin(votes.index[disputed])].drop_duplicates("video_id").copy()
    expert["annotator_id"] = "expert1"
    expert["stage"] = "expert"
    expert["label"] = [classes[truth[ids.index(v)]] for v in expert["video_id"]]
    ann = pd.concat([ann, expert], ignore_index=True)
    exp_label = expert.set_index("video_id")["label"]
    final = top.copy()
    final[exp_label.index] = exp_label
    shares = votes.div(votes.sum(axis=1), axis=0)
    p = shares.to_numpy()
    ent = -(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0)).sum(axis=1)
    labels = pd.DataFrame(
        {
            "video_id": votes.index,
            "label": final.to_numpy(),
            "method": np.where(disputed, "expert", "majority"),
            "n_votes": votes.sum(axis=1).to_numpy().astype(np.int32),
            "support": [shares.loc[v, final[v]] for v in votes.index],
            "entropy": ent,
            "confidence": [shares.loc[v, final[v]] for v in votes.index],
            "decided_stage": np.where(disputed, "expert", "cross_check_a"),
            "expert_changed": [
                bool(d and top[v] != final[v]) for v, d in zip(votes.index, disputed, strict=True)
            ],
        }
    )
    groups = pd.DataFrame(
        {
            "annotator_id": [f"a{i:02d}" for i in range(12)] + ["expert1"],
            "group_id": ["ABC"[i % 3] for i in range(12)] + ["expert"],
            "leader": [i < 3 for i in range(12)] + [False],
            "active": True,
        }
    )
    return {"videos": videos, "annotations": ann, "labels": labels, "groups": groups}


def write_root(root: Path, n: int = 150, seed: int = 0) -> dict[str, Path]:
    """ROOT/{videos,annotations,labels,groups}.parquet; returns the paths by kind."""
    frames = labelled_frames(n, seed)
    return {
        kind: write_manifest(frame, root / f"{kind}.parquet", kind, created_by="tests")
        for kind, frame in frames.items()
    }
