"""``escalate``: which items the next stage gets, by the protocol's rule for that stage.

- ``rotation``: every item of the source stage goes to the group ``offset`` places after the
  group that held it (the figure's cross-check sA: A's share to B, B's to C, C's to A).
- ``disputed``: items whose top label has at most ``clear_majority`` of the votes so far (or is
  tied) go to the group ``offset`` places after their first group, skipping groups that already
  judged them where another group has not (cross-check sB).
- ``uncertain``: the same test, and the items go to the expert group.

Judgements of annotators removed by an evaluation do not count. The assignment is stored in the
state file; once the target stage is pushed it is kept as it is, so a re-run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.agreement.frame import encode
from emotions_data.annotation.progress import check_complete
from emotions_data.annotation.protocol import EXPERT_GROUP, Protocol, Stage
from emotions_data.annotation.push import crowd_groups
from emotions_data.annotation.state import State
from emotions_data.schema.errors import ConfigError


@dataclass
class EscalateResult:
    stage: str
    assignment: dict[str, list[str]]
    considered: int = 0
    kept: bool = False
    unjudged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "items": {g: len(v) for g, v in self.assignment.items()},
            "total": sum(len(v) for v in self.assignment.values()),
            "considered": self.considered,
            "already_pushed": self.kept,
            "unjudged": len(self.unjudged),
        }


def active_judgements(annotations: pd.DataFrame, groups: pd.DataFrame | None) -> pd.DataFrame:
    """Judgements of annotators still active (all of them when no groups manifest is given)."""
    if groups is None:
        return annotations
    inactive = set(groups.loc[~groups["active"].astype(bool), "annotator_id"].astype(str))
    return annotations[~annotations["annotator_id"].astype(str).isin(inactive)]


def unclear_items(
    frame: pd.DataFrame, classes: tuple[str, ...], clear_majority: float
) -> list[str]:
    """Items whose top label share is <= ``clear_majority`` or tied (no clear majority)."""
    if frame.empty:
        return []
    enc = encode(frame, classes)
    counts = enc.counts
    top = counts.max(axis=1)
    tied = (counts == top[:, None]).sum(axis=1) > 1
    share = top / np.maximum(counts.sum(axis=1), 1)
    return sorted(str(v) for v in enc.items[tied | (share <= clear_majority)])


def _first_groups(state: State, stage: Stage) -> dict[str, str]:
    """video_id -> the first crowd group that held it in the stage's source stages."""
    first: dict[str, str] = {}
    for source in stage.from_stages:
        for group, vids in state.assignments.get(source, {}).items():
            if group != EXPERT_GROUP:
                for vid in vids:
                    first.setdefault(vid, group)
    return first


def compute_assignment(
    protocol: Protocol,
    stage: Stage,
    annotations: pd.DataFrame,
    groups: pd.DataFrame | None,
    state: State,
) -> tuple[dict[str, list[str]], int, list[str]]:
    names = (
        crowd_groups(groups)
        if groups is not None
        else sorted(
            {
                g
                for s in stage.from_stages
                for g in state.assignments.get(s, {})
                if g != EXPERT_GROUP
            }
        )
    )
    if not names and stage.kind != "expert":
        raise ConfigError("no annotator groups to route items to")
    frame = active_judgements(annotations[annotations["stage"].isin(stage.from_stages)], groups)
    # One vote per person and item, as in finalize (the later stage's judgement counts).
    rank = frame["stage"].map({s: i for i, s in enumerate(stage.from_stages)})
    votes = frame.iloc[rank.argsort(kind="stable")].drop_duplicates(
        ["video_id", "annotator_id"], keep="last"
    )
    out: dict[str, list[str]] = {}
    if stage.source == "rotation":
        source = stage.from_stages[0]
        if source not in state.assignments:
            raise ConfigError(f"stage {source!r} was never pushed; nothing to rotate")
        for group, vids in state.assignments[source].items():
            if group not in names:
                continue
            target = names[(names.index(group) + stage.offset) % len(names)]
            out.setdefault(target, []).extend(vids)
        considered = sum(len(v) for v in state.assignments[source].values())
        return {g: sorted(v) for g, v in sorted(out.items())}, considered, []
    items = unclear_items(votes, protocol.taxonomy.classes, stage.clear_majority)
    # unique() before leaving pandas: iterating an Arrow-backed column is slow per element
    routed = set(frame["video_id"].astype(str).unique().tolist())
    every = sorted(
        {
            v
            for s in stage.from_stages
            for vids in state.assignments.get(s, {}).values()
            for v in vids
        }
    )
    unjudged = [v for v in every if v not in routed]
    if stage.kind == "expert" or stage.source == "uncertain":
        return ({EXPERT_GROUP: items} if items else {}), len(routed), unjudged
    # (video, group) pairs that judged it: one set built once, not one per video.
    pairs = frame[["video_id", "group_id"]].dropna().astype(str).drop_duplicates()
    judged = set(zip(pairs["video_id"].tolist(), pairs["group_id"].tolist(), strict=True))
    first_groups = _first_groups(state, stage)
    position = {g: i for i, g in enumerate(names)}
    for vid in items:
        base = position.get(first_groups.get(vid, names[0]), 0)
        order = [names[(base + stage.offset + i) % len(names)] for i in range(len(names))]
        target = next((g for g in order if (vid, g) not in judged), order[0])
        out.setdefault(target, []).append(vid)
    return {g: sorted(v) for g, v in sorted(out.items())}, len(routed), unjudged


def escalate(
    root: Path,
    protocol: Protocol,
    to_stage: str,
    annotations: pd.DataFrame,
    groups: pd.DataFrame | None,
    *,
    from_stages: tuple[str, ...] = (),
    allow_incomplete: bool = False,
) -> EscalateResult:
    """Decide the items of ``to_stage``; refuse while a source stage's tasks miss judgements.

    ``allow_incomplete`` routes on what is there (the short tasks are still reported by
    ``pull`` and ``annotate status``).
    """
    stage = protocol.stage(to_stage)
    if not stage.labels_items or stage.source == "all":
        raise ConfigError(
            f"stage {stage.name!r} does not take items from earlier stages (source {stage.source!r})"
        )
    if from_stages:
        unknown = [s for s in from_stages if s not in stage.from_stages]
        if unknown:
            raise ConfigError(
                f"stage {stage.name!r} takes items from {', '.join(stage.from_stages)}, not {unknown[0]!r}"
            )
    state = State.load(root)
    if stage.name in state.assignments and state.stage_projects(stage.name):
        # Already pushed: the assignment is fixed, whatever changed since.
        return EscalateResult(stage.name, state.assignments[stage.name], kept=True)
    if not allow_incomplete:
        check_complete(root, protocol, stage.from_stages, annotations)
    assignment, considered, unjudged = compute_assignment(
        protocol, stage, annotations, groups, state
    )
    state.assignments[stage.name] = assignment
    state.save()
    return EscalateResult(stage.name, assignment, considered=considered, unjudged=unjudged)
