"""``evaluate``: per-annotator consistency and per-group alpha -> personnel adjustments.

Consistency of an annotator = how often their label equals the leave-one-out consensus of the
item (the majority of everyone else's judgements on it, undefined on ties), and Cohen's kappa of
their labels against that consensus. Annotators with at least ``min_judgements`` judged items
and agreement or kappa under the protocol's thresholds are flagged and removed (``active`` false)
or moved to the group with the fewest active members; the groups are then rebalanced so active
sizes differ by at most one. Every change carries a one-line reason and the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.annotation.protocol import EXPERT_GROUP, Protocol
from emotions_data.schema.errors import ConfigError


@dataclass
class EvaluateResult:
    groups: pd.DataFrame
    annotators: pd.DataFrame
    group_alpha: dict[str, float | None]
    flagged: list[str]
    moved: list[str]

    def to_dict(self) -> dict[str, Any]:
        table = self.annotators.replace({np.nan: None})
        return {
            "flagged": self.flagged,
            "moved": self.moved,
            "group_alpha": self.group_alpha,
            "annotators": table.to_dict(orient="records"),
        }


def loo_consistency(frame: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Per-annotator agreement and kappa against the leave-one-out consensus, plus lead time."""
    from emotions_data.agreement import per_annotator

    table = per_annotator(frame[["video_id", "annotator_id", "label"]], classes)
    table.index = table.index.astype(str)
    out = pd.DataFrame(
        {
            "annotator_id": table.index,
            "judgements": table["judgements"].astype(int).to_numpy(),
            "compared": table["n_compared"].astype(int).to_numpy(),
            "agreement": table["agreement"].astype(float).round(4).to_numpy(),
            "kappa": table["kappa"].astype(float).round(4).to_numpy(),
        }
    )
    if "lead_time_s" in frame.columns:
        lead = pd.to_numeric(frame["lead_time_s"], errors="coerce").astype(float)
        medians = lead.groupby(frame["annotator_id"].astype(str)).median()
        out["median_lead_time_s"] = out["annotator_id"].map(medians).to_numpy()
    else:
        out["median_lead_time_s"] = np.nan
    out = out.astype(object).where(out.notna(), None)
    return out.reset_index(drop=True)


def group_alphas(frame: pd.DataFrame, classes: tuple[str, ...]) -> dict[str, float | None]:
    from emotions_data.agreement import krippendorff_alpha

    out: dict[str, float | None] = {}
    for group, part in frame.groupby(frame["group_id"].astype(str)):
        value = krippendorff_alpha(part[["video_id", "annotator_id", "label"]], classes)
        value = float(value) if value is not None else None
        out[str(group)] = None if value is None or np.isnan(value) else round(value, 4)
    return out


def _rebalance(groups: pd.DataFrame, stage: str, moved: list[str]) -> None:
    """Move active members from the largest to the smallest group until sizes differ by <= 1."""
    crowd = groups["group_id"] != EXPERT_GROUP
    for _ in range(len(groups)):
        active = groups[crowd & groups["active"]]
        sizes = active.groupby("group_id").size()
        sizes = sizes.reindex(sorted(groups.loc[crowd, "group_id"].unique()), fill_value=0)
        if sizes.empty or sizes.max() - sizes.min() <= 1:
            return
        big, small = str(sizes.idxmax()), str(sizes.idxmin())
        candidates = active[(active["group_id"] == big) & ~active["leader"]]
        if candidates.empty:
            return
        idx = candidates.sort_values("annotator_id").index[-1]
        groups.loc[idx, ["group_id", "reason", "updated_stage"]] = [
            small,
            f"moved from {big} to {small} to rebalance active group sizes",
            stage,
        ]
        moved.append(str(groups.loc[idx, "annotator_id"]))


def annotator_table(
    protocol: Protocol, stage_name: str, annotations: pd.DataFrame, flagged: list[str]
) -> list[dict[str, Any]]:
    """The per-annotator figures an evaluation judged on (the table ``annotate evaluate`` prints)."""
    stage = protocol.stage(stage_name)
    frame = annotations[annotations["stage"].isin(stage.stages)]
    if frame.empty:
        return []
    table = loo_consistency(frame, protocol.taxonomy.classes)
    table["flagged"] = table["annotator_id"].isin(flagged)
    records: list[dict[str, Any]] = table.to_dict(orient="records")
    return records


def format_annotator_table(records: list[dict[str, Any]], groups: pd.DataFrame) -> str:
    """annotator, group, judgements, agreement, kappa, median lead time, outcome; one per line."""
    if not records:
        return "(no judgements)"
    by_id = groups.set_index(groups["annotator_id"].astype(str))
    rows = []
    for r in records:
        aid = str(r["annotator_id"])
        row = by_id.loc[aid] if aid in by_id.index else None
        if row is None:
            group, outcome = "-", "not in groups"
        else:
            group = str(row["group_id"])
            outcome = "removed" if not bool(row["active"]) else "kept"
            if r.get("flagged") and bool(row["active"]):
                outcome = "moved"
        if not r.get("flagged") and outcome == "removed":
            outcome = "removed earlier"

        def num(value: Any, digits: int) -> str:
            return "n/a" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"

        rows.append(
            {
                "annotator": aid,
                "group": group,
                "judgements": int(r["judgements"]),
                "compared": int(r["compared"]),
                "agreement": num(r["agreement"], 3),
                "kappa": num(r["kappa"], 3),
                "median_lead_s": num(r.get("median_lead_time_s"), 1),
                "flagged": "yes" if r.get("flagged") else "",
                "outcome": outcome,
            }
        )
    return str(pd.DataFrame(rows).to_string(index=False))


def evaluate_stage(
    protocol: Protocol, stage_name: str, annotations: pd.DataFrame, groups: pd.DataFrame
) -> EvaluateResult:
    stage = protocol.stage(stage_name)
    if stage.kind != "evaluate":
        raise ConfigError(f"stage {stage.name!r} is not an evaluate stage of {protocol.source}")
    frame = annotations[annotations["stage"].isin(stage.stages)].copy()
    if frame.empty:
        raise ConfigError(
            f"no judgements of stage(s) {', '.join(stage.stages)} to evaluate; pull them first"
        )
    classes = protocol.taxonomy.classes
    table = loo_consistency(frame, classes)
    alphas = group_alphas(frame, classes)
    groups = groups.copy().reset_index(drop=True)
    groups["active"] = groups["active"].astype(bool)
    groups["leader"] = groups["leader"].astype(bool)
    groups["reason"] = groups["reason"].astype(object)
    groups["updated_stage"] = groups["updated_stage"].astype(object)
    flagged, moved = [], []
    index = {str(a): i for i, a in groups["annotator_id"].items()}
    for row in table.itertuples():
        i = index.get(row.annotator_id)
        if i is None or not groups.loc[i, "active"] or groups.loc[i, "group_id"] == EXPERT_GROUP:
            continue
        if row.compared < stage.min_judgements:
            continue
        why = []
        if row.agreement is not None and row.agreement < stage.min_agreement:
            why.append(f"agreement {row.agreement:.2f} < {stage.min_agreement:.2f}")
        if row.kappa is not None and row.kappa < stage.min_kappa:
            why.append(f"kappa {row.kappa:.2f} < {stage.min_kappa:.2f}")
        if not why:
            continue
        flagged.append(row.annotator_id)
        reason = f"{' and '.join(why)} against the leave-one-out consensus"
        group = str(groups.loc[i, "group_id"])
        if stage.action == "move":
            active = groups[(groups["active"]) & (groups["group_id"] != EXPERT_GROUP)]
            sizes = active.groupby("group_id").size().drop(group, errors="ignore")
            target = str(sizes.idxmin()) if len(sizes) else group
            groups.loc[i, ["group_id", "reason"]] = [target, f"{reason}; moved from {group}"]
            moved.append(row.annotator_id)
        else:
            groups.loc[i, ["active", "reason"]] = [False, f"{reason}; removed"]
        groups.loc[i, "updated_stage"] = stage.name
        if groups.loc[i, "leader"]:
            groups.loc[i, "leader"] = False
            _new_leader(groups, group, table, stage.name)
    if stage.action == "remove":
        _rebalance(groups, stage.name, moved)
    table["flagged"] = table["annotator_id"].isin(flagged)
    return EvaluateResult(
        groups=groups, annotators=table, group_alpha=alphas, flagged=flagged, moved=moved
    )


def _new_leader(groups: pd.DataFrame, group: str, table: pd.DataFrame, stage: str) -> None:
    """A group keeps a leader: the active member with the best agreement takes over."""
    members = groups[(groups["group_id"] == group) & groups["active"]]
    if members.empty or members["leader"].any():
        return
    score = table.set_index("annotator_id")["agreement"]
    best = max(members.index, key=lambda i: score.get(str(groups.loc[i, "annotator_id"])) or 0.0)
    groups.loc[best, ["leader", "reason", "updated_stage"]] = [
        True,
        f"became leader of {group} after the leader was flagged",
        stage,
    ]
