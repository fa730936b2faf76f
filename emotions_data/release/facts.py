"""What the manifests of a dataset root say, gathered once for stats, the card and Croissant.

Every number in the report, the dataset card and ``croissant.json`` comes from here, so the
three never disagree and nothing is typed by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.annotation.protocol import EXPERT_GROUP
from emotions_data.schema.errors import ManifestError
from emotions_data.schema.io import Manifest, read_manifest
from emotions_data.schema.manifests import SPLITS
from emotions_data.schema.taxonomy import Taxonomy

log = logging.getLogger(__name__)

AGREEMENT_BOOTSTRAP = 500


@dataclass
class RootPaths:
    """The shared dataset-root layout (every path can be overridden)."""

    root: Path
    videos: Path
    labels: Path
    annotations: Path
    groups: Path
    split: Path
    variants: Path

    @classmethod
    def of(cls, root: str | Path, **overrides: str | Path | None) -> RootPaths:
        root = Path(root)
        paths = {
            "videos": root / "videos.parquet",
            "labels": root / "labels.parquet",
            "annotations": root / "annotations.parquet",
            "groups": root / "groups.parquet",
            "split": root / "split.parquet",
            "variants": root / "variants",
        }
        for key, value in overrides.items():
            if value is not None:
                paths[key] = Path(value)
        return cls(root=root, **paths)


@dataclass
class DatasetFacts:
    taxonomy: Taxonomy
    labels: pd.DataFrame
    videos: pd.DataFrame | None
    annotations: pd.DataFrame | None
    groups: pd.DataFrame | None
    #: variant name -> split frame (video_id, label, split, fold)
    variants: dict[str, pd.DataFrame]
    #: variant name -> its metadata (definition, seed, ...)
    variant_meta: dict[str, dict[str, Any]]
    manifests: dict[str, Manifest] = field(default_factory=dict)

    # -- composition -------------------------------------------------------------------
    def labelled(self) -> pd.DataFrame:
        """Labels joined with the videos' platform, duration and resolution."""
        frame = self.labels.copy()
        if self.videos is not None:
            cols = [
                c
                for c in ("platform", "duration_s", "width", "height", "source_url", "sha256")
                if c in self.videos.columns
            ]
            frame = frame.merge(self.videos[["video_id", *cols]], on="video_id", how="left")
        if "platform" not in frame.columns:
            frame["platform"] = "unknown"
        frame["platform"] = frame["platform"].astype("string").fillna("unknown")
        return frame

    def class_counts(self) -> pd.Series:
        counts = self.labels["label"].value_counts()
        return pd.Series(
            [int(counts.get(c, 0)) for c in self.taxonomy.classes], index=self.taxonomy.classes
        )

    def imbalance(self) -> str:
        """One sentence naming the largest and the smallest class (taxonomy order breaks ties)."""
        counts = self.class_counts()
        largest, smallest = str(counts.idxmax()), str(counts.idxmin())
        if counts[largest] == counts[smallest]:
            return f"No class imbalance: every class has {int(counts[largest])} videos."
        return (
            f"Class imbalance: the largest class, {largest}, has {int(counts[largest])} videos; "
            f"the smallest, {smallest}, has {int(counts[smallest])}."
        )

    def variant_table(self, name: str) -> pd.DataFrame:
        """Class x split counts of one variant (all classes, all splits, with totals)."""
        frame = self.variants[name]
        t = frame.groupby(["label", "split"]).size().unstack(fill_value=0)
        t = t.reindex(index=list(self.taxonomy.classes), columns=list(SPLITS), fill_value=0)
        t["total"] = t.sum(axis=1)
        t.loc["total"] = t.sum(axis=0)
        return t.astype(int)

    def platform_share(self) -> pd.DataFrame:
        """Share of each platform within each class (rows sum to 1)."""
        frame = self.labelled()
        t = frame.groupby(["label", "platform"]).size().unstack(fill_value=0)
        t = t.reindex(index=[c for c in self.taxonomy.classes if c in t.index])
        return t.div(t.sum(axis=1), axis=0)

    # -- collection ---------------------------------------------------------------------
    def funnel(self) -> list[tuple[str, int]]:
        """From URLs to final labels, step by step."""
        steps: list[tuple[str, int]] = []
        if self.videos is not None:
            status = self.videos["status"].value_counts()
            steps += [
                ("URLs", len(self.videos)),
                ("downloaded", len(self.videos) - int(status.get("failed", 0))),
                (
                    "kept after filters",
                    len(self.videos)
                    - int(status.get("failed", 0))
                    - int(status.get("filtered", 0)),
                ),
                ("unique (not duplicate)", int(status.get("ok", 0))),
            ]
        if self.annotations is not None:
            steps.append(("annotated", int(self.annotations["video_id"].nunique())))
        steps.append(("finally labelled", len(self.labels)))
        return steps

    def losses(self) -> dict[str, int]:
        """Counts behind the funnel: failures by kind, filtered, duplicates, disputes."""
        out: dict[str, int] = {}
        if self.videos is not None:
            v = self.videos
            for kind, n in (
                v.loc[v["status"] == "failed", "error_kind"].fillna("other").value_counts().items()
            ):
                out[f"failed: {kind}"] = int(n)
            out["filtered"] = int((v["status"] == "filtered").sum())
            out["duplicate"] = int((v["status"] == "duplicate").sum())
        out["disputed (sent to the expert)"] = self.disputed()
        out["expert-decided"] = int((self.labels["method"] == "expert").sum())
        out["expert changed the crowd's label"] = int(self.labels["expert_changed"].sum())
        return out

    def disputed(self) -> int:
        if self.annotations is not None and "stage" in self.annotations.columns:
            expert = self.annotations["stage"].astype(str).str.startswith("expert")
            if expert.any():
                return int(self.annotations.loc[expert, "video_id"].nunique())
        return int((self.labels["method"] == "expert").sum())

    # -- annotation ---------------------------------------------------------------------
    def stages(self) -> list[str]:
        if self.annotations is None:
            return []
        return list(dict.fromkeys(self.annotations["stage"].astype(str)))

    def annotation_sources(self) -> str:
        """``"label-studio 900, import 17"``: where the judgements came from."""
        if self.annotations is None or "source" not in self.annotations.columns:
            return ""
        counts = self.annotations["source"].astype(str).value_counts()
        return ", ".join(f"{k} {int(v)}" for k, v in counts.items())

    def cross_checked(self) -> int | None:
        """Videos judged by two or more annotator groups (None without group ids)."""
        ann = self.annotations
        if ann is None or "group_id" not in ann.columns or ann["group_id"].isna().all():
            return None
        crowd = ann[~ann["stage"].astype(str).str.startswith("expert")]
        return int((crowd.groupby("video_id")["group_id"].nunique() >= 2).sum())

    def annotators_per_item(self) -> dict[str, Any]:
        """Crowd judgements per labelled video (expert excluded), from the labels' n_votes."""
        votes = self.labels["n_votes"].astype(int)
        out: dict[str, Any] = {
            "mean": round(float(votes.mean()), 2),
            "median": float(votes.median()),
            "min": int(votes.min()),
            "max": int(votes.max()),
        }
        if self.annotations is not None:
            ann = self.annotations
            out["annotators"] = int(ann["annotator_id"].nunique())
            out["judgements"] = len(ann)
            out["per_stage"] = {
                str(s): round(float(g.groupby("video_id").size().mean()), 2)
                for s, g in ann.groupby("stage", sort=False)
            }
        if self.groups is not None:
            g = self.groups
            # the expert is a group in the manifest but not one of the crowd's groups
            out["groups"] = int(g.loc[g["group_id"] != EXPERT_GROUP, "group_id"].nunique())
            out["active_annotators"] = int(g["active"].sum())
            out["removed_annotators"] = int((~g["active"].astype(bool)).sum())
        return out

    def agreement(self, *, n_boot: int = AGREEMENT_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
        """Krippendorff's alpha (nominal) per stage and over the crowd, with bootstrap CIs."""
        if self.annotations is None or self.annotations.empty:
            return {}
        from emotions_data.release.agreement_figures import agreement_by_stage

        return agreement_by_stage(self.annotations, self.taxonomy, n_boot=n_boot, seed=seed)

    def label_quality(self) -> dict[str, Any]:
        labels = self.labels
        return {
            "methods": {str(k): int(v) for k, v in labels["method"].value_counts().items()},
            "unanimous": int((labels["support"] >= 1.0 - 1e-9).sum()),
            "mean_support": round(float(labels["support"].mean()), 3),
            "mean_entropy_bits": round(float(labels["entropy"].mean()), 3),
        }

    def date_range(self) -> tuple[str, str] | None:
        if self.videos is None or "fetched_at" not in self.videos.columns:
            return None
        fetched = pd.to_datetime(self.videos["fetched_at"]).dropna()
        if fetched.empty:
            return None
        return fetched.min().date().isoformat(), fetched.max().date().isoformat()


def _optional(path: Path, kind: str) -> Manifest | None:
    return read_manifest(path, kind) if path.exists() else None


def load_facts(paths: RootPaths) -> DatasetFacts:
    """Read every manifest of a root; labels and a split or variants are required."""
    labels = read_manifest(paths.labels, "labels")
    videos = _optional(paths.videos, "videos")
    annotations = _optional(paths.annotations, "annotations")
    groups = _optional(paths.groups, "groups")
    variants: dict[str, pd.DataFrame] = {}
    meta: dict[str, dict[str, Any]] = {}
    manifests = {"labels": labels}
    for name, m in (("videos", videos), ("annotations", annotations), ("groups", groups)):
        if m is not None:
            manifests[name] = m
    if paths.variants.is_dir():
        for file in sorted(paths.variants.glob("*.parquet")):
            m = read_manifest(file, "split")
            name = str(m.meta.extra.get("variant") or file.stem)
            variants[name] = m.df
            meta[name] = {**m.meta.extra, "path": str(file), "created_at": m.meta.created_at}
            manifests[f"variant:{name}"] = m
    # the paper's variants first (full is the default config of the release), then the rest
    preferred = [n for n in ("full", "balanced", "test-oriented") if n in variants]
    order = preferred + sorted(set(variants) - set(preferred))
    variants = {n: variants[n] for n in order}
    meta = {n: meta[n] for n in order}
    if not variants and paths.split.exists():
        m = read_manifest(paths.split, "split")
        variants["full"] = m.df
        meta["full"] = {
            **m.meta.extra,
            "variant": "full",
            "definition": {"rule": "full", "rationale": "The official split."},
        }
        manifests["variant:full"] = m
    if not variants:
        raise ManifestError(
            [
                f"{paths.root}: no variants/*.parquet and no split.parquet; run "
                "'emotions-data build-variants' (or 'split') first"
            ]
        )
    return DatasetFacts(
        taxonomy=labels.taxonomy,
        labels=labels.df,
        videos=videos.df if videos is not None else None,
        annotations=annotations.df if annotations is not None else None,
        groups=groups.df if groups is not None else None,
        variants=variants,
        variant_meta=meta,
        manifests=manifests,
    )


def orientation(width: pd.Series, height: pd.Series) -> pd.Series:
    """portrait / landscape / square (unknown where the size is missing)."""
    w = width.astype("Float64")
    h = height.astype("Float64")
    out = np.where(h > w, "portrait", np.where(w > h, "landscape", "square"))
    return pd.Series(out, index=width.index).where(~(w.isna() | h.isna()).to_numpy(), "unknown")
