"""Seeded, stratified, leakage-free splits (train/val/test, optionally K cross-validation folds).

Leakage groups: videos of one uploader, and members of one near-duplicate cluster (``dup_of``),
are joined into one group (union-find) and a group is always placed whole. Groups are placed
greedily, largest first (ties in a seeded random order), each into the split where it lowers
the squared distance to the per-class targets most; platform counts enter the same cost with a
smaller weight, so platforms are balanced "where possible" without overriding the classes.
Where groups are too coarse for the exact ratios, the result says how far the ratios moved.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.schema.errors import ConfigError, ManifestError
from emotions_data.schema.manifests import SPLITS
from emotions_data.unionfind import Components

DEFAULT_RATIOS = (0.7, 0.1, 0.2)
#: Weight of the platform term relative to the class term in the placement cost.
PLATFORM_WEIGHT = 0.25


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator keyed on the root seed and names, so one variant's draws never shift another's."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode("utf-8")) for n in names)])


def parse_ratios(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.7,0.1,0.2"`` -> (0.7, 0.1, 0.2); three non-negative shares summing to 1, train > 0."""
    try:
        values = (
            [float(v) for v in text.split(",")]
            if isinstance(text, str)
            else [float(v) for v in text]
        )
    except ValueError:
        raise ConfigError(f"ratios {text!r}: expected three numbers like 0.7,0.1,0.2") from None
    if len(values) != 3 or any(v < 0 for v in values) or values[0] <= 0:
        raise ConfigError(
            f"ratios {text!r}: expected three non-negative shares train,val,test with train > 0"
        )
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(f"ratios {text!r}: shares sum to {sum(values):g}, expected 1")
    return values[0], values[1], values[2]


def leakage_groups(frame: pd.DataFrame) -> pd.Series:
    """A group id per row: rows sharing an ``uploader_id`` or a ``dup_of`` cluster share a group.

    ``frame`` has ``video_id`` and optional ``uploader_id`` and ``dup_of`` columns; the returned
    Series (aligned with ``frame``) holds the smallest video_id of each group, which is stable
    under re-ordering of the input.
    """
    ids = frame["video_id"].astype(str).tolist()
    index = {v: i for i, v in enumerate(ids)}
    linked = Components(len(ids))

    for column in ("uploader_id", "dup_of"):
        if column not in frame.columns:
            continue
        first_of: dict[str, int] = {}
        for i, value in enumerate(frame[column].tolist()):
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                continue
            key = str(value)
            if column == "dup_of" and key in index:
                linked.union(i, index[key])
            # several duplicates of one kept copy share the key even if the copy is unlabelled
            if key in first_of:
                linked.union(i, first_of[key])
            else:
                first_of[key] = i
    roots = [linked.find(i) for i in range(len(ids))]
    smallest: dict[int, str] = {}
    for i, r in enumerate(roots):
        if r not in smallest or ids[i] < smallest[r]:
            smallest[r] = ids[i]
    return pd.Series([smallest[r] for r in roots], index=frame.index, name="group")


@dataclass
class SplitResult:
    """The assignment plus how far it is from what was asked."""

    frame: pd.DataFrame  # video_id, label, split, fold (sorted by video_id)
    requested: dict[str, float]
    achieved: dict[str, float]
    #: Largest |achieved - requested| share over splits, overall and within any class.
    max_shift: float
    max_class_shift: float
    n_groups: int
    largest_group: int
    folds: int | None = None
    fold_sizes: list[int] = field(default_factory=list)
    #: What was left out of the input, and why.
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """Class x split counts (with totals)."""
        t = self.frame.groupby(["label", "split"]).size().unstack(fill_value=0)
        cols = [s for s in SPLITS if s in t.columns]
        t = t[cols]
        t["total"] = t.sum(axis=1)
        t.loc["total"] = t.sum(axis=0)
        return t

    def summary(self) -> dict[str, Any]:
        return {
            "videos": len(self.frame),
            "groups": self.n_groups,
            "largest_group": self.largest_group,
            "requested": self.requested,
            "achieved": {k: round(v, 4) for k, v in self.achieved.items()},
            "max_shift": round(self.max_shift, 4),
            "max_class_shift": round(self.max_class_shift, 4),
            "folds": self.folds,
            "fold_sizes": self.fold_sizes,
            "notes": self.notes,
        }


def category_codes(values: pd.Series) -> tuple[npt.NDArray[np.int64], int]:
    """Dense integer codes in sorted order of the distinct values, and how many there are."""
    cats, codes = np.unique(values.astype(str).to_numpy(dtype=object), return_inverse=True)
    return codes.astype(np.int64).ravel(), len(cats)


def assign_groups(
    labels: npt.NDArray[np.int64],
    n_classes: int,
    groups: npt.NDArray[np.int64],
    n_groups: int,
    shares: Sequence[float],
    rng: np.random.Generator,
    platforms: npt.NDArray[np.int64] | None = None,
    n_platforms: int = 0,
) -> npt.NDArray[np.int64]:
    """Place whole groups into ``len(shares)`` bins; returns the bin of each row."""
    bins = len(shares)
    share = np.asarray(shares, dtype=np.float64)
    class_counts = np.zeros((n_groups, n_classes))
    np.add.at(class_counts, (groups, labels), 1.0)
    feats: npt.NDArray[np.float64] = class_counts
    weights = np.ones(n_classes)
    if platforms is not None and n_platforms > 1:
        plat_counts = np.zeros((n_groups, n_platforms))
        np.add.at(plat_counts, (groups, platforms), 1.0)
        feats = np.hstack([class_counts, plat_counts])
        weights = np.concatenate([weights, np.full(n_platforms, PLATFORM_WEIGHT)])
    targets = share[:, None] * feats.sum(axis=0)[None, :]
    placed = np.zeros((bins, feats.shape[1]))
    sizes = class_counts.sum(axis=1)
    # seeded random order among equal sizes, largest groups first (they are the hardest to fit)
    order = np.lexsort((rng.permutation(n_groups), -sizes))
    group_bin = np.empty(n_groups, dtype=np.int64)
    open_bins = share > 0
    for g in order:
        v = feats[g]
        # change of sum_w (placed + v - target)^2 for each bin
        delta = ((2.0 * (placed - targets) + v) * v * weights).sum(axis=1)
        delta[~open_bins] = np.inf
        b = int(np.argmin(delta))
        group_bin[g] = b
        placed[b] += v
    return group_bin[groups]


def leakage_frame(labels: pd.DataFrame, videos: pd.DataFrame | None) -> pd.DataFrame:
    frame = labels[["video_id", "label"]].copy()
    frame["video_id"] = frame["video_id"].astype(str)
    if videos is not None:
        cols = [c for c in ("platform", "uploader_id", "dup_of") if c in videos.columns]
        extra = videos[["video_id", *cols]].copy()
        extra["video_id"] = extra["video_id"].astype(str)
        frame = frame.merge(extra, on="video_id", how="left")
    if "platform" not in frame.columns:
        frame["platform"] = "unknown"
    frame["platform"] = frame["platform"].fillna("unknown").astype(str)
    return frame


def make_split(
    labels: pd.DataFrame,
    videos: pd.DataFrame | None = None,
    *,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    folds: int | None = None,
    seed: int = 0,
    stream: str = "split",
) -> SplitResult:
    """Assign every labelled video to train/val/test (and a fold with ``folds``).

    With ``folds=K`` the test share of ``ratios`` is held out first; the rest is cut into K
    folds of equal size with the same guarantees (``fold`` 0..K-1, null for test), and fold 0 is
    marked ``val`` so the manifest is usable as it is; fold k as validation is
    ``fold == k`` with the other folds as train.
    """
    if labels.empty:
        raise ManifestError(["labels: no labelled videos to split"])
    if labels["video_id"].duplicated().any():
        dup = labels.loc[labels["video_id"].duplicated(), "video_id"].iloc[0]
        raise ManifestError([f"labels: video {dup!r} appears twice"])
    r = parse_ratios(list(ratios))
    if folds is not None and folds < 2:
        raise ConfigError(f"folds {folds}: expected at least 2")
    rng = rng_for(seed, stream)
    frame = leakage_frame(labels, videos)
    frame["group"] = leakage_groups(frame)
    label_codes, n_classes = category_codes(frame["label"])
    plat_codes, n_plat = category_codes(frame["platform"])
    group_codes, n_groups = category_codes(frame["group"])
    if folds is None:
        bins = assign_groups(
            label_codes, n_classes, group_codes, n_groups, r, rng, plat_codes, n_plat
        )
        frame["split"] = np.array(SPLITS)[bins]
        frame["fold"] = pd.array([None] * len(frame), dtype="Int32")
    else:
        test_share = r[2]
        bins = assign_groups(
            label_codes,
            n_classes,
            group_codes,
            n_groups,
            (1 - test_share, test_share),
            rng,
            plat_codes,
            n_plat,
        )
        dev = bins == 0
        fold = np.full(len(frame), -1, dtype=np.int64)
        sub_groups, n_sub = category_codes(frame.loc[dev, "group"])
        fold[dev] = assign_groups(
            label_codes[dev],
            n_classes,
            sub_groups,
            n_sub,
            [1.0 / folds] * folds,
            rng,
            plat_codes[dev],
            n_plat,
        )
        empty = [k for k in range(folds) if not (fold == k).any()]
        if empty:  # more folds than leakage groups: a fold would have no video at all
            raise ConfigError(
                f"folds {folds}: {len(empty)} fold(s) would get no video from the {n_sub} "
                f"leakage groups (an uploader's videos, a near-duplicate cluster) outside the "
                f"test set; use fewer folds"
            )
        frame["split"] = np.where(~dev, "test", np.where(fold == 0, "val", "train"))
        frame["fold"] = pd.array([None if f < 0 else int(f) for f in fold], dtype="Int32")
    out = (
        frame[["video_id", "label", "split", "fold"]].sort_values("video_id").reset_index(drop=True)
    )
    return _result(out, frame, r, folds, n_groups)


def _result(
    out: pd.DataFrame,
    frame: pd.DataFrame,
    ratios: tuple[float, float, float],
    folds: int | None,
    n_groups: int,
) -> SplitResult:
    n = len(out)
    if folds is None:
        requested = dict(zip(SPLITS, ratios, strict=True))
    else:
        # fold 0 is val: each fold's share of the development set
        dev = 1 - ratios[2]
        requested = {"train": dev * (folds - 1) / folds, "val": dev / folds, "test": ratios[2]}
    counts = out["split"].value_counts()
    achieved = {s: float(counts.get(s, 0)) / n for s in SPLITS}
    max_shift = max(abs(achieved[s] - requested[s]) for s in SPLITS)
    per_class = out.groupby("label")["split"].value_counts(normalize=True).unstack(fill_value=0.0)
    max_class_shift = max(
        float((per_class.get(s, pd.Series(0.0, index=per_class.index)) - requested[s]).abs().max())
        for s in SPLITS
    )
    fold_sizes = [int((out["fold"] == k).sum()) for k in range(folds)] if folds is not None else []
    return SplitResult(
        frame=out,
        requested={k: round(v, 6) for k, v in requested.items()},
        achieved=achieved,
        max_shift=max_shift,
        max_class_shift=max_class_shift,
        n_groups=n_groups,
        largest_group=int(frame["group"].value_counts().max()),
        folds=folds,
        fold_sizes=fold_sizes,
    )


def check_no_leakage(split: pd.DataFrame, videos: pd.DataFrame | None) -> list[str]:
    """Problems (empty when none): an uploader or a duplicate cluster in two splits or folds."""
    frame = leakage_frame(split[["video_id", "label"]], videos)
    frame["group"] = leakage_groups(frame)
    merged = frame.merge(split[["video_id", "split", "fold"]], on="video_id")
    merged["where"] = merged["split"].astype(str) + ":" + merged["fold"].astype(str)
    spread = merged.groupby("group")["where"].nunique()
    return [f"group of {g!r} spans {n} splits/folds" for g, n in spread[spread > 1].items()]
