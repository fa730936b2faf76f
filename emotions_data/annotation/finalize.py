"""``finalize``: one label per video, with provenance; expert labels are final.

The crowd's judgements of the protocol's finalize stages (removed annotators excluded) are
aggregated by majority vote or Dawid-Skene (``annotation.aggregation``), one vote per person
and item (a person who judged an item in two stages counts once, with the later judgement).
Ties are never broken silently: a tied item takes the expert's label when there is one, and is
otherwise left out of ``labels.parquet`` and reported in ``unresolved``. ``expert_changed`` is true when the expert's
label differs from a clear crowd majority.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.annotation.aggregation import DawidSkene, MajorityVote
from emotions_data.annotation.escalate import active_judgements
from emotions_data.annotation.protocol import METHODS, Protocol
from emotions_data.annotation.store import write_manifest_if_changed
from emotions_data.schema.errors import ConfigError


@dataclass
class FinalizeResult:
    labels: pd.DataFrame
    unresolved: list[str]
    method: str
    confusions: dict[str, list[list[float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        counts = self.labels["method"].value_counts().to_dict() if len(self.labels) else {}
        return {
            "labels": len(self.labels),
            "by_method": {str(k): int(v) for k, v in counts.items()},
            "expert_changed": int(self.labels["expert_changed"].sum()) if len(self.labels) else 0,
            "unresolved": self.unresolved,
            "method": self.method,
        }


def _entropy_bits(shares: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, shares * np.log2(shares), 0.0)
    return np.asarray(-terms.sum(axis=1) + 0.0, dtype=np.float64)


def finalize_labels(
    protocol: Protocol,
    annotations: pd.DataFrame,
    groups: pd.DataFrame | None = None,
    *,
    method: str | None = None,
    seed: int = 0,
) -> FinalizeResult:
    method = method or protocol.finalize_method
    if method not in METHODS:
        raise ConfigError(f"method {method!r} is not supported; allowed: {', '.join(METHODS)}")
    classes = protocol.taxonomy.classes
    order = {s.name: i for i, s in enumerate(protocol.stages)}
    expert_stages = [s.name for s in protocol.stages if s.kind == "expert"]
    crowd = annotations[annotations["stage"].isin(protocol.finalize_stages)]
    if protocol.exclude_inactive:
        crowd = active_judgements(crowd, groups)
    crowd = crowd[["video_id", "annotator_id", "stage", "label"]].astype(
        {"video_id": str, "annotator_id": str, "stage": str, "label": str}
    )
    if crowd.empty:
        raise ConfigError(
            f"no crowd judgements of stage(s) {', '.join(protocol.finalize_stages)} to finalize"
        )
    # One person is one vote per item: a second round of the same people (a cross-check back
    # to their own group, a member moved into the group that gets the item) is not an
    # independent judgement. Their latest judgement (by stage order) counts.
    crowd = crowd.iloc[crowd["stage"].map(order).argsort(kind="stable")]
    crowd = crowd.drop_duplicates(["video_id", "annotator_id"], keep="last")
    mv = MajorityVote(tie_policy="none").fit(crowd, classes)
    counts = mv.counts_.reindex(columns=list(classes)).to_numpy(dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    items = mv.counts_.index.astype(str)
    confusions: dict[str, list[list[float]]] = {}
    if method == "dawid-skene":
        ds = DawidSkene(seed=seed).fit(crowd, classes)
        labels = ds.labels_.reindex(items).astype(object)
        labels[labels.index.isin(list(map(str, ds.ties_)))] = None
        posterior = np.array(
            ds.probas_.reindex(index=items, columns=list(classes)).to_numpy(), dtype=np.float64
        )  # a writable copy: expert rows are overwritten below
        ties = set(map(str, ds.ties_))
        confusions = {
            str(a): np.round(ds.confusions_[i], 4).tolist() for i, a in enumerate(ds.annotators_)
        }
    else:
        labels = mv.labels_.reindex(items)
        posterior = shares.copy()
        ties = set(map(str, mv.ties_))
    majority = mv.labels_.reindex(items)
    last_stage = crowd.assign(o=crowd["stage"].map(order)).groupby("video_id")["o"].max()
    stage_names = [s.name for s in protocol.stages]
    frame = pd.DataFrame(
        {
            "video_id": items,
            "label": labels.to_numpy(dtype=object),
            "method": "majority" if method == "majority" else "dawid_skene",
            "n_votes": counts.sum(axis=1).astype(np.int32),
            "entropy": _entropy_bits(shares),
            "decided_stage": np.asarray(stage_names, dtype=object)[
                last_stage.reindex(items).to_numpy(dtype=int)
            ],
            "expert_changed": False,
        }
    )
    idx = {c: i for i, c in enumerate(classes)}
    expert = annotations[annotations["stage"].isin(expert_stages)]
    expert = active_judgements(expert, groups) if protocol.exclude_inactive else expert
    if len(expert):
        # The latest expert judgement per item is the final word. Vectorised: one index
        # lookup for all expert items (a per-item scan of the frame is quadratic).
        expert = expert.sort_values("created_at", kind="stable", na_position="first")
        final = expert.groupby("video_id").tail(1)
        final_ids = final["video_id"].astype(str).to_numpy(dtype=object)
        final_labels = final["label"].to_numpy(dtype=object)
        final_stages = final["stage"].to_numpy(dtype=object)
        new = ~pd.Index(final_ids).isin(frame["video_id"])
        if new.any():
            # Items only the expert judged: no crowd votes, no crowd shares.
            extra = pd.DataFrame(
                {
                    "video_id": final_ids[new],
                    "label": None,
                    "method": "expert",
                    "n_votes": np.zeros(int(new.sum()), dtype=np.int32),
                    "entropy": 0.0,
                    "decided_stage": final_stages[new],
                    "expert_changed": False,
                }
            )
            frame = pd.concat([frame, extra], ignore_index=True)
            zeros = np.zeros((int(new.sum()), len(classes)))
            posterior, shares = np.vstack([posterior, zeros]), np.vstack([shares, zeros])
            majority = pd.concat(
                [majority, pd.Series([None] * int(new.sum()), index=final_ids[new])]
            )
        pos = pd.Index(frame["video_id"]).get_indexer(final_ids)
        crowd_labels = majority.to_numpy(dtype=object)[pos]
        frame.loc[pos, "label"] = final_labels
        frame.loc[pos, "method"] = "expert"
        frame.loc[pos, "decided_stage"] = final_stages
        frame.loc[pos, "expert_changed"] = [
            isinstance(crowd, str) and crowd != given
            for crowd, given in zip(crowd_labels, final_labels, strict=True)
        ]
        posterior[pos] = 0.0
        posterior[pos, [idx[str(label)] for label in final_labels]] = 1.0
    label_idx = (
        frame["label"].map(lambda x: idx.get(x, -1) if isinstance(x, str) else -1).to_numpy()
    )
    rows = np.arange(len(frame))
    ok = label_idx >= 0
    frame["support"] = np.where(ok, shares[rows, np.maximum(label_idx, 0)], 0.0)
    frame["confidence"] = np.where(ok, posterior[rows, np.maximum(label_idx, 0)], 0.0)
    unresolved = sorted(frame.loc[~ok, "video_id"].astype(str))
    unresolved_ties = [v for v in unresolved if v in ties]
    frame = frame[ok].sort_values("video_id").reset_index(drop=True)
    frame = frame[
        [
            "video_id",
            "label",
            "method",
            "n_votes",
            "support",
            "entropy",
            "confidence",
            "decided_stage",
            "expert_changed",
        ]
    ]
    frame["expert_changed"] = frame["expert_changed"].astype(bool)
    return FinalizeResult(
        labels=frame,
        unresolved=sorted(set(unresolved) | set(unresolved_ties)),
        method=method,
        confusions=confusions,
    )


def write_labels(
    result: FinalizeResult, out: Path, protocol: Protocol, parents: list[Path]
) -> Path:
    """Write the labels manifest, unless it already holds exactly these labels (re-runs)."""
    write_manifest_if_changed(
        result.labels,
        out,
        "labels",
        params={
            "method": result.method,
            "protocol": protocol.name,
            "unresolved": len(result.unresolved),
        },
        parents=parents,
        taxonomy=protocol.taxonomy,
    )
    return out
