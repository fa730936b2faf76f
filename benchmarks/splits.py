"""Leakage-free stratified splits: ``emotions-data split`` side by side with scikit-learn.

A lab without this toolkit would reach for scikit-learn's ``StratifiedGroupKFold`` with the
uploader as the group. On a synthetic labelled set (6 imbalanced classes, 3 platforms, most
uploaders with one video and a few prolific ones, near-duplicate clusters across uploaders):

- ours: ``make_split`` with 5 folds (leakage groups = uploaders joined with dup_of clusters);
- scikit-learn ``StratifiedGroupKFold(5, shuffle=True)`` grouped by uploader only (what one
  writes first), and grouped by our joined leakage groups (same constraint as ours).

For each: wall time, the largest deviation of a class's share in a fold from the requested
share (points), the fold size spread, and how many leakage groups end up in two folds.
Run: ``.venv/bin/python benchmarks/splits.py --videos 28000``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.schema.taxonomy import load_taxonomy
from emotions_data.variants.split import leakage_groups, make_split


def synthetic(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labels and videos frames (only the columns the split reads), vectorised."""
    rng = np.random.default_rng(seed)
    classes = np.array(load_taxonomy().classes)
    label = classes[rng.choice(len(classes), n, p=[0.3, 0.1, 0.2, 0.15, 0.1, 0.15])]
    ids = np.char.add("v", np.arange(n).astype(str))
    prolific = rng.random(n) < 0.2
    uploader = np.where(
        prolific,
        np.char.add("p", rng.integers(0, max(1, n // 100), n).astype(str)),
        np.char.add("solo", np.arange(n).astype(str)),
    )
    # 2 % of the videos are near-duplicates of another video (a repost by someone else)
    dup = np.full(n, None, dtype=object)
    reposts = rng.choice(n, n // 50, replace=False)
    dup[reposts] = ids[rng.integers(0, n, len(reposts))]
    dup[reposts[dup[reposts] == ids[reposts]]] = None
    labels = pd.DataFrame({"video_id": ids, "label": label})
    videos = pd.DataFrame(
        {
            "video_id": ids,
            "platform": np.array(["douyin", "kuaishou", "tiktok"])[rng.integers(0, 3, n)],
            "uploader_id": uploader,
            "dup_of": dup,
        }
    )
    return labels, videos


def quality(labels: pd.DataFrame, fold: np.ndarray, groups: pd.Series, k: int) -> dict[str, Any]:
    frame = labels.assign(fold=fold, group=groups.to_numpy())
    share = frame.groupby("label")["fold"].value_counts(normalize=True).unstack(fill_value=0)
    sizes = frame["fold"].value_counts()
    spread = frame.groupby("group")["fold"].nunique()
    return {
        "class_shift_pts": round(100 * float((share - 1 / k).abs().to_numpy().max()), 2),
        "size_spread": int(sizes.max() - sizes.min()),
        "leaking_groups": int((spread > 1).sum()),
    }


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def compare(n: int, k: int, repeat: int) -> None:
    from sklearn.model_selection import StratifiedGroupKFold

    labels, videos = synthetic(n)
    frame = labels.merge(videos, on="video_id")
    joined = leakage_groups(frame)
    print(
        f"\n{n} videos, {joined.nunique()} leakage groups (largest "
        f"{joined.value_counts().max()} videos), {k} folds"
    )

    def ours() -> np.ndarray:
        # folds over everything (no held-out test share), like StratifiedGroupKFold
        res = make_split(labels, videos, ratios=(1.0, 0.0, 0.0), folds=k, seed=0)
        # back to the input order (the result is sorted by video_id)
        return res.frame.set_index("video_id").loc[labels["video_id"], "fold"].to_numpy()

    def sklearn_by(groups: pd.Series) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            fold = np.empty(n, dtype=np.int64)
            cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=0)
            for i, (_, test) in enumerate(cv.split(labels, labels["label"], groups)):
                fold[test] = i
            return fold

        return run

    t_ours, f_ours = timed(ours, repeat)
    t_up, f_up = timed(sklearn_by(frame["uploader_id"]), repeat)
    t_j, f_j = timed(sklearn_by(joined), repeat)
    rows = [
        ("ours (uploader + dup_of groups)", t_ours, quality(labels, f_ours, joined, k)),
        ("sklearn StratifiedGroupKFold, uploader", t_up, quality(labels, f_up, joined, k)),
        ("sklearn StratifiedGroupKFold, joined groups", t_j, quality(labels, f_j, joined, k)),
    ]
    print(
        f"{'method':45s} {'time s':>8s} {'/ ours':>7s} {'class shift':>12s} "
        f"{'size spread':>12s} {'leaking groups':>15s}"
    )
    for name, t, q in rows:
        print(
            f"{name:45s} {t:8.3f} {t / t_ours:7.2f} {q['class_shift_pts']:11.2f}p "
            f"{q['size_spread']:12d} {q['leaking_groups']:15d}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--videos", type=int, nargs="+", default=[28_000])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    for n in args.videos:
        compare(n, args.folds, args.repeat)


if __name__ == "__main__":
    main()
