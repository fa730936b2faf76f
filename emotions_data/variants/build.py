"""Build the dataset variants (full, balanced, test-oriented, ...) as split manifests.

Every draw comes from a generator keyed on the root seed and the variant's name, and every
table is sorted by video_id, so the same inputs and seed give identical tables.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.schema.errors import ManifestError, QualityGateError
from emotions_data.schema.io import read_manifest, write_manifest
from emotions_data.schema.manifests import SPLITS
from emotions_data.schema.safety import LOCK_NAME, check_safe_name, inside_root, root_lock
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
    #: Figures for the metadata and the card (e.g. the test set's shortfall, videos left out).
    report: dict[str, Any] = field(default_factory=dict)

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


@dataclass
class TestPacking:
    """Which leakage groups form the test set, and how far each class is from its target."""

    groups: list[str]
    filled: dict[str, int]
    target: int

    @property
    def shortfall(self) -> dict[str, int]:
        return {c: self.target - v for c, v in self.filled.items() if v < self.target}


def pack_test_groups(
    reliable: npt.NDArray[np.int64],
    unreliable: npt.NDArray[np.int64],
    names: npt.NDArray[np.str_],
    classes: list[str],
    target: int,
    rng: np.random.Generator,
) -> TestPacking:
    """Choose whole groups whose reliable members fill every class up to ``target``, no more.

    ``reliable[g, c]``: group g's reliable videos of class c; ``unreliable[g]``: its other
    members (they leave the variant when g goes to test). Groups with the same counts are
    interchangeable, so the integer programme (scipy's HiGHS) decides how many of each kind
    to take: maximise the videos placed (each class at most ``target``), then the fewest left
    out. That is exact: the per-class shortfall is zero whenever some packing fills every
    class. Which groups of a kind are taken is a seeded draw.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    k = len(classes)
    if len(names) == 0:
        return TestPacking([], dict.fromkeys(classes, 0), target)
    kinds, kind_of, multiplicity = np.unique(
        np.column_stack([reliable, unreliable]), axis=0, return_inverse=True, return_counts=True
    )
    kind_of = kind_of.reshape(-1)
    per_kind, waste = kinds[:, :k].astype(float), kinds[:, k].astype(float)
    # Lexicographic: one more video placed outweighs every video that could be left out.
    weight = float(unreliable.sum()) + 1.0
    result = milp(
        c=-(weight * per_kind.sum(axis=1) - waste),
        constraints=[LinearConstraint(per_kind.T, 0, target)],
        integrality=np.ones(len(kinds)),
        bounds=Bounds(0, multiplicity.astype(float)),
        options={"time_limit": 30.0},
    )
    if result.x is None:  # pragma: no cover - x = 0 is always feasible
        take = np.zeros(len(kinds), dtype=np.int64)
    else:
        take = np.round(result.x).astype(np.int64)
    chosen: list[str] = []
    order = rng.permutation(len(names))
    for kind in np.flatnonzero(take):
        members = order[kind_of[order] == kind]
        chosen += names[members[: take[kind]]].tolist()
    filled = (per_kind * take[:, None]).sum(axis=0).astype(np.int64)
    return TestPacking(sorted(chosen), dict(zip(classes, filled.tolist(), strict=True)), target)


def largest_balanced_target(
    reliable: npt.NDArray[np.int64],
    unreliable: npt.NDArray[np.int64],
    names: npt.NDArray[np.str_],
    classes: list[str],
    below: int,
) -> int:
    """The largest per-class count under ``below`` that whole groups fill in every class; 0
    when none does.

    Feasibility is not monotone in the count (two groups of two videos of one class fill 2
    or 4 but not 3), so each count is tried from the top; it starts at the fewest reliable
    videos of a class, above which no count can be filled.
    """
    probe = np.random.default_rng(0)  # which groups of a kind are drawn does not matter here
    top = min(below - 1, int(reliable.sum(axis=0).min()) if len(reliable) else 0)
    for per_class in range(top, 0, -1):
        if not pack_test_groups(reliable, unreliable, names, classes, per_class, probe).shortfall:
            return per_class
    return 0


def build_test_oriented(
    spec: VariantSpec,
    labels: pd.DataFrame,
    videos: pd.DataFrame | None,
    seed: int,
    classes: tuple[str, ...],
) -> tuple[pd.DataFrame, list[str], dict[str, Any]]:
    """A class-balanced test set of reliable items only; train/val from the rest, leak-free.

    A leakage group (uploader, near-duplicate cluster) chosen for test gives its reliable
    members to test; its unreliable members can go neither to test (not reliable) nor to
    train/val (they would leak), so they leave the variant and are counted. Returns the
    table, notes, and the report for the metadata (target, filled, shortfall, left out).
    """
    p = spec.params
    rng = rng_for(seed, "variant", spec.name)
    frame = leakage_frame(labels, videos)
    frame["group"] = leakage_groups(frame)
    indexed = labels.assign(video_id=labels["video_id"].astype(str)).set_index("video_id")
    frame["reliable"] = reliable_mask(
        indexed.loc[frame["video_id"]], p["min_support"], p["include_expert"]
    ).to_numpy()
    present = [c for c in classes if (frame["label"] == c).any()]
    asked = p["test_per_class"] is not None
    target = int(p["test_per_class"] or max(1, int(p["test_share"] * len(frame) / len(present))))
    # One row of per-class reliable counts (and unreliable members) per group that has any.
    names, group_code = np.unique(frame["group"].astype(str).to_numpy(), return_inverse=True)
    class_index = {c: i for i, c in enumerate(present)}
    label_code = frame["label"].map(class_index).to_numpy()
    rel = frame["reliable"].to_numpy(dtype=bool)
    reliable = np.zeros((len(names), len(present)), dtype=np.int64)
    np.add.at(reliable, (group_code[rel], label_code[rel]), 1)
    unreliable = np.bincount(group_code[~rel], minlength=len(names)).astype(np.int64)
    has = reliable.sum(axis=1) > 0
    candidates = (reliable[has], unreliable[has], names[has], present)
    aimed, largest = target, None
    packing = pack_test_groups(*candidates, target, rng)
    if packing.shortfall:
        largest = largest_balanced_target(*candidates, target)
        if not asked and largest > 0:
            # A target derived from test_share is a wish, not a requirement: the largest
            # balanced test set instead (an asked test_per_class stays a requirement).
            target = largest
            packing = pack_test_groups(*candidates, target, rng)
    in_test_group = frame["group"].astype(str).isin(packing.groups).to_numpy()
    left_out = in_test_group & ~rel
    notes: list[str] = []
    if target < aimed:
        low = [c for c in present if int(reliable[:, present.index(c)].sum()) < aimed]
        notes.append(
            f"test set: {target} reliable videos per class, the largest balanced test set whole "
            f"leakage groups allow (test_share {p['test_share']:g} aims at {aimed}"
            + (
                f"; {', '.join(f'{c} has {int(reliable[:, present.index(c)].sum())}' for c in low)}"
                " reliable"
                if low
                else ""
            )
            + "); set test_per_class to ask for a size"
        )
    if packing.shortfall:
        notes.append(
            f"test set short of {target} reliable videos per class: "
            + ", ".join(
                f"{c} {packing.filled[c]} ({v} short)" for c, v in packing.shortfall.items()
            )
        )
    if left_out.any():
        notes.append(
            f"{int(left_out.sum())} unreliable video(s) of test groups left out "
            "(in train/val they would share an uploader or duplicate cluster with test)"
        )
    rest = frame[~in_test_group]
    lab, k = category_codes(rest["label"])
    plat, kp = category_codes(rest["platform"])
    grp, kg = category_codes(rest["group"])
    bins = assign_groups(lab, k, grp, kg, p["train_val_ratios"], rng, plat, kp)
    frame["split"] = "test"
    frame.loc[~in_test_group, "split"] = np.array(["train", "val"])[bins]
    frame["fold"] = pd.array([None] * len(frame), dtype="Int32")
    report = {
        "test_target_per_class": target,
        "test_filled_per_class": packing.filled,
        "reliable_per_class": dict(zip(present, reliable.sum(axis=0).tolist(), strict=True)),
        "test_shortfall": packing.shortfall,
        "left_out": {"unreliable_in_test_group": int(left_out.sum())},
    }
    if target < aimed:
        report["test_target_from_share"] = aimed
    if largest is not None and packing.shortfall:
        report["test_largest_feasible_per_class"] = largest
    return _sorted(frame[~left_out]), notes, report


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
            frame, notes, report = build_test_oriented(spec, labels, videos, seed, classes)
            results.append(VariantResult(spec.name, None, frame, notes, report))
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
    allow_short: bool = False,
) -> list[VariantResult]:
    """Write ``out_dir/<name>.parquet`` (kind split) for each variant of the YAML.

    A test-oriented variant's test set aims at ``test_per_class`` when the YAML sets it, else
    at ``test_share`` of the videos; an aim from ``test_share`` that whole leakage groups
    cannot fill becomes the largest balanced test set they can (said in the notes). An asked
    ``test_per_class`` that cannot be met is a failed quality gate (``QualityGateError``
    naming the classes and the largest feasible count, after the other variants are
    written), unless ``allow_short``: then it is written with the shortfall in its metadata.
    """
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
    short: list[str] = []
    with root_lock_of(out_dir):
        for spec, result in zip(specs, results, strict=True):
            result.notes[:0] = notes
            definition: dict[str, Any] = spec.definition()
            shortfall = result.report.get("test_shortfall") or {}
            if shortfall and not allow_short:
                filled = result.report["test_filled_per_class"]
                largest = result.report.get("test_largest_feasible_per_class", 0)
                short.append(
                    f"variant {spec.name!r}: class(es) "
                    + ", ".join(
                        f"{c!r} ({filled[c]}; {result.report['reliable_per_class'][c]} reliable)"
                        for c in shortfall
                    )
                    + f" cannot reach the test target of {result.report['test_target_per_class']} "
                    "per class with whole leakage groups; "
                    + (
                        f"the largest balanced test set is {largest} per class"
                        if largest
                        else "no balanced test set is possible"
                    )
                )
                continue
            result.path = write_manifest(
                result.frame,
                inside_root(out_dir, f"{check_safe_name(spec.name, 'variant')}.parquet"),
                "split",
                params={"variant": spec.name, "seed": seed, **definition},
                parents=parents,
                taxonomy=labels_m.taxonomy,
                extra_metadata={
                    "variant": spec.name,
                    "definition": definition,
                    "seed": seed,
                    **result.report,
                },
            )
    if short:
        raise QualityGateError(
            "; ".join(short) + " (lower min_support or test_per_class, or pass --allow-short "
            "to write it short)"
        )
    return results


def root_lock_of(output: Path) -> AbstractContextManager[Any]:
    """The write lock of the dataset root ``output`` goes into (``ROOT/split.parquet``,
    ``ROOT/variants``): its folder's, when that holds a manifest or a lock file; else none."""
    folder = output.parent
    if any((folder / name).exists() for name in ("videos.parquet", "labels.parquet", LOCK_NAME)):
        return root_lock(folder)
    return contextlib.nullcontext()


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
    with root_lock_of(Path(out)):
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
