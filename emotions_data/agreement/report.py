"""One agreement report: the four statistics overall and per class / annotator / group / stage,
with seeded bootstrap intervals, the reading of alpha, and the ``--min-alpha`` gate."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.agreement.annotators import per_annotator_encoded
from emotions_data.agreement.bootstrap import (
    Interval,
    bootstrap,
    check_bootstrap_args,
    percentile_interval,
)
from emotions_data.agreement.frame import Encoded, class_list, encode
from emotions_data.agreement.statistics import (
    features,
    interpret_alpha,
    krippendorff_alpha_counts,
    statistics_from_features,
)
from emotions_data.schema.errors import ConfigError, ManifestError, QualityGateError
from emotions_data.schema.taxonomy import Taxonomy

BY_CHOICES = ("class", "annotator", "group", "stage")
STATISTICS = ("krippendorff_alpha", "fleiss_kappa", "pairwise_agreement", "gwet_ac1")
UNASSIGNED = "(unassigned)"


@dataclass
class Figures:
    """The statistics of one set of judgements (everything, one group, one stage)."""

    n_items: int
    n_items_unpairable: int
    n_annotators: int
    n_judgements: int
    values: dict[str, float]
    ci: dict[str, Interval] = field(default_factory=dict)

    @property
    def alpha(self) -> float:
        return self.values["krippendorff_alpha"]


@dataclass
class AgreementReport:
    taxonomy: Taxonomy
    stages: list[str]
    overall: Figures
    per_class: pd.DataFrame | None = None
    per_annotator: pd.DataFrame | None = None
    per_group: pd.DataFrame | None = None
    per_stage: pd.DataFrame | None = None
    bootstrap: dict[str, Any] | None = None
    #: The encoded judgements, for plots (not serialised).
    encoded: Encoded | None = None
    #: Whose judgements these are when a groups manifest says (e.g. the final crowd).
    crowd: str | None = None

    @property
    def interpretation(self) -> str:
        return interpret_alpha(self.overall.alpha)

    def to_dict(self) -> dict[str, Any]:
        o = self.overall
        out: dict[str, Any] = {
            "n_items": o.n_items,
            "n_items_unpairable": o.n_items_unpairable,
            "n_annotators": o.n_annotators,
            "n_judgements": o.n_judgements,
            **{name: _num(o.values[name]) for name in STATISTICS},
            "interpretation": self.interpretation,
            "taxonomy": self.taxonomy.name,
            "classes": list(self.taxonomy.classes),
            "stages": self.stages,
        }
        if self.crowd is not None:
            out["crowd"] = self.crowd
        if o.ci:
            out["ci"] = {name: interval.to_dict() for name, interval in o.ci.items()}
            out["bootstrap"] = self.bootstrap
        for name in ("per_class", "per_annotator", "per_group", "per_stage"):
            table = getattr(self, name)
            if table is not None:
                out[name] = _records(table)
        return out


def _num(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    name = table.index.name or "name"
    return [
        {name: key, **{col: _num(v) for col, v in row.items()}}
        for key, row in zip(table.index, table.to_dict("records"), strict=True)
    ]


def parse_by(by: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"class,stage"`` or a sequence -> validated tuple in canonical order."""
    if by is None:
        return ()
    items = [p.strip() for p in (by.split(",") if isinstance(by, str) else by) if p.strip()]
    unknown = [p for p in items if p not in BY_CHOICES]
    if unknown:
        raise ConfigError(
            f"--by {','.join(unknown)} is not supported; allowed: {', '.join(BY_CHOICES)}"
        )
    return tuple(c for c in BY_CHOICES if c in items)


def _figures(
    enc: Encoded, n_boot: int, level: float, rng: np.random.Generator | None
) -> tuple[Figures, Any]:
    feats = features(enc.counts)
    stats = statistics_from_features(feats, q=enc.k)
    values = {
        # The headline alpha comes from the reference package; the closed form is identical.
        "krippendorff_alpha": krippendorff_alpha_counts(enc.counts),
        "fleiss_kappa": float(stats.fleiss_kappa),
        "pairwise_agreement": float(stats.pairwise_agreement),
        "gwet_ac1": float(stats.gwet_ac1),
    }
    figures = Figures(
        n_items=feats.n_items,
        n_items_unpairable=feats.n_unpairable,
        n_annotators=enc.n_annotators,
        n_judgements=enc.n_judgements,
        values=values,
    )
    boot = None
    if n_boot > 0 and rng is not None:
        boot = bootstrap(feats, n_boot, enc.k, rng)
        figures.ci = {name: percentile_interval(getattr(boot, name), level) for name in STATISTICS}
    return figures, (stats, boot)


def _subset_table(
    enc: Encoded,
    keys: npt.NDArray[Any],
    index_name: str,
    n_boot: int,
    level: float,
    seed: int,
    *,
    sort: bool = True,
) -> pd.DataFrame:
    rows = []
    # Stages keep the order in which they appear (the protocol's order); groups are sorted.
    names = pd.unique(keys).tolist()
    names = sorted(names) if sort else names
    for i, name in enumerate(names):
        rng = np.random.default_rng([seed, 1 + i]) if n_boot else None
        fig, _ = _figures(enc.subset(keys == name), n_boot, level, rng)
        row: dict[str, Any] = {
            "n_items": fig.n_items,
            "n_items_unpairable": fig.n_items_unpairable,
            "n_annotators": fig.n_annotators,
            "n_judgements": fig.n_judgements,
            **fig.values,
            "interpretation": interpret_alpha(fig.alpha),
        }
        for stat in ("krippendorff_alpha", "fleiss_kappa") if fig.ci else ():
            row[f"{stat}_ci_low"] = fig.ci[stat].low
            row[f"{stat}_ci_high"] = fig.ci[stat].high
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index(names, name=index_name))


def compute_agreement(
    frame: pd.DataFrame,
    taxonomy: Taxonomy | Sequence[str],
    *,
    stages: Sequence[str] | None = None,
    by: str | Iterable[str] | None = None,
    groups: pd.Series | None = None,
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
    source: str = "annotations",
) -> AgreementReport:
    """Everything ``emotions-data agreement`` reports, on the long frame.

    ``frame`` has video_id, annotator_id, label and optionally stage and group_id. ``groups``
    maps annotator_id -> group_id (a groups manifest); without it the frame's group_id is used.
    ``source`` names the input in error messages.
    """
    dims = parse_by(by)
    check_bootstrap_args(n_boot, level)
    if not isinstance(taxonomy, Taxonomy):
        taxonomy = Taxonomy(name="custom", classes=class_list(taxonomy))
    # One factorize of the stage column serves the filter, the breakdown and the stage list
    # (in order of first appearance, i.e. the protocol's order).
    if "stage" in frame.columns:
        stage = frame["stage"]
        codes, uniques = pd.factorize(stage.fillna("primary") if stage.hasnans else stage)
        stage_codes, stage_names = np.asarray(codes), [str(u) for u in uniques]
    else:
        stage_codes, stage_names = np.zeros(len(frame), dtype=np.int64), ["primary"]
    if stages:
        unknown = [s for s in stages if s not in stage_names]
        if unknown:
            raise ConfigError(
                f"stage(s) {unknown} have no judgements; stages present: "
                f"{', '.join(stage_names) or 'none'}"
            )
        keep = np.isin(stage_codes, [stage_names.index(s) for s in stages])
        frame, stage_codes = frame[keep], stage_codes[keep]
    if len(frame) == 0:
        raise ManifestError(["no judgements to analyse (the annotations are empty)"])
    group_keys = _group_keys(frame, groups) if "group" in dims else None
    enc = encode(frame, taxonomy, source=source)
    rng = np.random.default_rng([seed, 0]) if n_boot else None
    overall, (stats, boot) = _figures(enc, n_boot, level, rng)
    report = AgreementReport(
        taxonomy=taxonomy,
        stages=[stage_names[c] for c in pd.unique(stage_codes)],
        overall=overall,
        encoded=enc,
        bootstrap={"n_boot": n_boot, "level": level, "seed": seed} if n_boot else None,
    )
    if "class" in dims:
        judged = enc.counts.sum(axis=0)
        table = pd.DataFrame(
            {
                "judgements": judged,
                "share": judged / max(enc.n_judgements, 1),
                "alpha": np.asarray(stats.class_alpha, dtype=np.float64),
            },
            index=pd.Index(list(enc.classes), name="class"),
        )
        if boot is not None:
            intervals = [percentile_interval(boot.class_alpha[:, c], level) for c in range(enc.k)]
            table["alpha_ci_low"] = [iv.low for iv in intervals]
            table["alpha_ci_high"] = [iv.high for iv in intervals]
        report.per_class = table
    if "annotator" in dims:
        table = per_annotator_encoded(enc)
        if groups is not None:
            table.insert(0, "group_id", groups.reindex(table.index).fillna(UNASSIGNED).to_numpy())
        report.per_annotator = table
    if group_keys is not None:
        report.per_group = _subset_table(enc, group_keys, "group_id", n_boot, level, seed)
    if "stage" in dims:
        stage_keys = np.asarray(stage_names, dtype=object)[stage_codes]
        report.per_stage = _subset_table(
            enc, stage_keys, "stage", n_boot, level, seed + 1, sort=False
        )
    return report


def _group_keys(frame: pd.DataFrame, groups: pd.Series | None) -> npt.NDArray[Any]:
    if groups is not None:
        mapped = frame["annotator_id"].astype(str).map(groups)
        keys: npt.NDArray[Any] = mapped.fillna(UNASSIGNED).astype(str).to_numpy()
        return keys
    if "group_id" in frame.columns and frame["group_id"].notna().any():
        own: npt.NDArray[Any] = frame["group_id"].fillna(UNASSIGNED).astype(str).to_numpy()
        return own
    raise ConfigError(
        "per-group figures need --groups GROUPS.parquet or a group_id column in the annotations"
    )


def enforce_min_alpha(report: AgreementReport, min_alpha: float | None) -> None:
    """Raise ``QualityGateError`` (CLI exit code 3) when alpha is below ``min_alpha``."""
    if min_alpha is None:
        return
    if report.overall.n_annotators < 2:
        # Agreement needs two people: no alpha can pass (or fail) a gate here. An error, exit 1:
        # the input cannot be measured, which is not the same as a measured failure (exit 3).
        raise ManifestError(
            [
                f"--min-alpha needs judgements by at least two annotators; "
                f"{report.overall.n_annotators} in stages {', '.join(report.stages) or 'none'}"
            ]
        )
    alpha = report.overall.alpha
    if not np.isfinite(alpha) or alpha < min_alpha:
        shown = f"{alpha:.4f}" if np.isfinite(alpha) else "undefined"
        raise QualityGateError(
            f"Krippendorff's alpha {shown} is below --min-alpha {min_alpha:g} "
            f"({report.interpretation}; {report.overall.n_items} pairable items, "
            f"{report.overall.n_judgements} judgements, stages {', '.join(report.stages)})"
        )
