"""Build the dataset variants (full, balanced, test-oriented, ...) as split manifests.

Every draw comes from a generator keyed on the root seed and the variant's name, and every
table is sorted by video_id, so the same inputs and seed give identical tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.schema.errors import ManifestError
from emotions_data.schema.io import read_manifest, write_manifest
from emotions_data.schema.manifests import SPLITS
from emotions_data.schema.taxonomy import Taxonomy
from emotions_data.variants.definitions import VariantSpec, load_variants
from emotions_data.variants.split import (
    SplitResult,
    assign_groups,
    category_codes,
    leakage_frame,
    leakage_groups,
    make_split,
    rng_for,
)

SPLIT_COLUMNS = ["video_id", "label", "split", "fold"]


@dataclass
class VariantResult:
    name: str
    path: Path | None
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def counts(self) -> pd.DataFrame:
        t = self.frame.groupby(["label", "split"]).size().unstack(fill_value=0)
        return t[[s for s in SPLITS if s in t.columns]]


def largest_remainder(
    sizes: npt.NDArray[np.int64], n: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Split ``n`` over cells proportionally to ``sizes`` (integers, never above a cell's size)."""
    total = int(sizes.sum())
    n = min(n, total)
    if total == 0 or n == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    quota = sizes * (n / total)
    alloc: npt.NDArray[np.int64] = np.floor(quota).astype(np.int64)
    left = n - int(alloc.sum())
    # largest fractional part first; a seeded random order breaks ties
    order = np.lexsort((rng.permutation(len(sizes)), -(quota - alloc)))
    for i in order:
        if left == 0:
            break
        if alloc[i] < sizes[i]:
            alloc[i] += 1
            left -= 1
    return alloc


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[SPLIT_COLUMNS].sort_values("video_id").reset_index(drop=True)
    out["fold"] = out["fold"].astype("Int32")
    return out


def build_balanced(
    spec: VariantSpec, base: pd.DataFrame, platforms: pd.Series, seed: int, classes: tuple[str, ...]
) -> tuple[pd.DataFrame, list[str]]:
    """``per_class`` videos of each class (default: the smallest class), stratified by platform x split."""
    rng = rng_for(seed, "variant", spec.name)
    counts = base["label"].value_counts()
    present = [c for c in classes if counts.get(c, 0) > 0]
    notes: list[str] = []
    n = spec.params.get("per_class") or int(min(counts[c] for c in present))
    frame = base.assign(platform=base["video_id"].map(platforms).fillna("unknown").astype(str))
    picked: list[pd.DataFrame] = []
    for cls in present:
        rows = frame[frame["label"] == cls]
        if len(rows) < n:
            notes.append(
                f"class {cls!r} has {len(rows)} videos, fewer than per_class {n}: all kept"
            )
        cells = rows.groupby(["split", "platform"], sort=True)
        keys = list(cells.groups)
        sizes = np.array([len(cells.groups[k]) for k in keys], dtype=np.int64)
        alloc = largest_remainder(sizes, n, rng)
        for key, k in zip(keys, alloc, strict=True):
            if k == 0:
                continue
            cell = cells.get_group(key).sort_values("video_id")
            take = np.sort(rng.choice(len(cell), size=int(k), replace=False))
            picked.append(cell.iloc[take])
    missing = [c for c in classes if c not in present]
    if missing:
        notes.append(f"class(es) {missing} have no videos")
    return _sorted(pd.concat(picked)), notes


def reliable_mask(labels: pd.DataFrame, min_support: float, include_expert: bool) -> pd.Series:
    """Unanimous (support >= min_support) or, with ``include_expert``, decided by the expert."""
    mask = labels["support"].astype(float) >= float(min_support) - 1e-9
    if include_expert:
        mask |= labels["method"].astype(str) == "expert"
    return mask


def build_test_oriented(
    spec: VariantSpec,
    labels: pd.DataFrame,
    videos: pd.DataFrame | None,
    seed: int,
    classes: tuple[str, ...],
) -> tuple[pd.DataFrame, list[str]]:
    """A class-balanced test set of reliable items only (whole leakage groups); train/val from the rest."""
    p = spec.params
    rng = rng_for(seed, "variant", spec.name)
    frame = leakage_frame(labels, videos)
    frame["group"] = leakage_groups(frame)
    indexed = labels.assign(video_id=labels["video_id"].astype(str)).set_index("video_id")
    frame["reliable"] = reliable_mask(
        indexed.loc[frame["video_id"]], p["min_support"], p["include_expert"]
    ).to_numpy()
    # a group may go to test only if every member is reliable, or the others would leak
    eligible = frame.groupby("group")["reliable"].transform("all")
    counts = frame.loc[eligible, "label"].value_counts()
    present = [c for c in classes if (frame["label"] == c).any()]
    short = [c for c in present if counts.get(c, 0) == 0]
    if short:
        raise ManifestError(
            [
                f"variant {spec.name!r}: no reliable video of class(es) {short} "
                f"(min_support {p['min_support']}, include_expert {p['include_expert']}); "
                "lower min_support or drop the class"
            ]
        )
    target = p["test_per_class"] or max(1, int(p["test_share"] * len(frame) / len(present)))
    n = min(int(target), *(int(counts[c]) for c in present))
    notes: list[str] = []
    if n < int(target):
        notes.append(
            f"test set: {n} reliable videos per class (asked {target}; the scarcest class limits it)"
        )
    # one row of class counts per eligible group, so the greedy pass is plain array arithmetic
    cand = frame[eligible]
    names, group_code = np.unique(cand["group"].astype(str).to_numpy(), return_inverse=True)
    class_index = {c: i for i, c in enumerate(present)}
    per_group = np.zeros((len(names), len(present)), dtype=np.int64)
    np.add.at(per_group, (group_code, cand["label"].map(class_index).to_numpy()), 1)
    sizes = per_group.sum(axis=1)
    # singletons first (they fill the per-class quota exactly), seeded order within a size
    order = np.lexsort((rng.permutation(len(names)), sizes))
    filled = np.zeros(len(present), dtype=np.int64)
    chosen: list[int] = []
    for i in order:
        if (filled + per_group[i] <= n).all():
            chosen.append(int(i))
            filled += per_group[i]
            if (filled >= n).all():
                break
    test_groups = set(names[chosen].tolist())
    taken = dict(zip(present, filled.tolist(), strict=True))
    behind = {c: v for c, v in taken.items() if v < n}
    if behind:
        notes.append(f"test set short of {n} per class where groups did not fit: {behind}")
    is_test = frame["group"].isin(test_groups).to_numpy()
    rest = frame[~is_test]
    lab, k = category_codes(rest["label"])
    plat, kp = category_codes(rest["platform"])
    grp, kg = category_codes(rest["group"])
    bins = assign_groups(lab, k, grp, kg, p["train_val_ratios"], rng, plat, kp)
    frame["split"] = "test"
    frame.loc[~is_test, "split"] = np.array(["train", "val"])[bins]
    frame["fold"] = pd.array([None] * len(frame), dtype="Int32")
    return _sorted(frame), notes


def build_variant_frames(
    labels: pd.DataFrame,
    videos: pd.DataFrame | None,
    specs: list[VariantSpec],
    *,
    taxonomy: Taxonomy,
    seed: int = 0,
    split: pd.DataFrame | None = None,
) -> list[VariantResult]:
    """The variants' tables (no files written)."""
    classes = taxonomy.classes
    platforms = (
        videos.set_index(videos["video_id"].astype(str))["platform"].astype(str)
        if videos is not None and "platform" in videos.columns
        else pd.Series(dtype=str)
    )
    base_notes: list[str] = []
    if split is not None:
        base = split.merge(labels[["video_id"]], on="video_id")
        if len(base) < len(labels):
            base_notes.append(f"{len(labels) - len(base)} labelled video(s) are not in the split")
        base = _sorted(base)
    else:
        full = next((s for s in specs if s.rule == "full"), None)
        ratios = full.params["ratios"] if full is not None else [0.7, 0.1, 0.2]
        base = make_split(labels, videos, ratios=ratios, seed=seed).frame
    results: list[VariantResult] = []
    for spec in specs:
        if spec.rule == "full":
            results.append(VariantResult(spec.name, None, base.copy(), list(base_notes)))
        elif spec.rule == "balanced":
            frame, notes = build_balanced(spec, base, platforms, seed, classes)
            results.append(VariantResult(spec.name, None, frame, notes))
        else:
            frame, notes = build_test_oriented(spec, labels, videos, seed, classes)
            results.append(VariantResult(spec.name, None, frame, notes))
    return results


def usable_labels(
    labels: pd.DataFrame, videos: pd.DataFrame | None
) -> tuple[pd.DataFrame, list[str]]:
    """Labels of videos that are still ``ok`` in the videos manifest (all labels without one)."""
    if videos is None:
        return labels, []
    ok = set(videos.loc[videos["status"] == "ok", "video_id"].astype(str))
    keep = labels["video_id"].astype(str).isin(ok)
    notes = []
    if not keep.all():
        notes.append(
            f"{int((~keep).sum())} labelled video(s) are not 'ok' in the videos manifest: left out"
        )
    return labels[keep].reset_index(drop=True), notes


def build_variants(
    labels_path: str | Path,
    out_dir: str | Path,
    *,
    videos_path: str | Path | None = None,
    variants_path: str | Path | None = None,
    split_path: str | Path | None = None,
    seed: int = 0,
    only: list[str] | None = None,
) -> list[VariantResult]:
    """Write ``out_dir/<name>.parquet`` (kind split) for each variant of the YAML."""
    labels_m = read_manifest(labels_path, "labels")
    videos = read_manifest(videos_path, "videos").df if videos_path is not None else None
    split = read_manifest(split_path, "split").df if split_path is not None else None
    specs = load_variants(variants_path)
    if only:
        unknown = sorted(set(only) - {s.name for s in specs})
        if unknown:
            raise ManifestError(
                [f"unknown variant(s) {unknown}; defined: {', '.join(s.name for s in specs)}"]
            )
        specs = [s for s in specs if s.name in only]
    labels, notes = usable_labels(labels_m.df, videos)
    results = build_variant_frames(
        labels, videos, specs, taxonomy=labels_m.taxonomy, seed=seed, split=split
    )
    parents = [p for p in (labels_path, videos_path, split_path) if p is not None]
    out_dir = Path(out_dir)
    for spec, result in zip(specs, results, strict=True):
        result.notes[:0] = notes
        definition: dict[str, Any] = spec.definition()
        result.path = write_manifest(
            result.frame,
            out_dir / f"{spec.name}.parquet",
            "split",
            params={"variant": spec.name, "seed": seed, **definition},
            parents=parents,
            taxonomy=labels_m.taxonomy,
            extra_metadata={"variant": spec.name, "definition": definition, "seed": seed},
        )
    return results


def split_dataset(
    labels_path: str | Path,
    out: str | Path,
    *,
    videos_path: str | Path | None = None,
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2),
    folds: int | None = None,
    seed: int = 0,
) -> SplitResult:
    """``emotions-data split``: the official split manifest; returns the ``SplitResult``."""
    labels_m = read_manifest(labels_path, "labels")
    videos = read_manifest(videos_path, "videos").df if videos_path is not None else None
    labels, notes = usable_labels(labels_m.df, videos)
    result = make_split(labels, videos, ratios=ratios, folds=folds, seed=seed)
    result.notes = notes
    parents = [p for p in (labels_path, videos_path) if p is not None]
    write_manifest(
        result.frame,
        out,
        "split",
        params={"ratios": list(ratios), "folds": folds, "seed": seed},
        parents=parents,
        taxonomy=labels_m.taxonomy,
        extra_metadata={
            "variant": "official",
            "seed": seed,
            "ratio_report": result.summary(),
        },
    )
    return result
