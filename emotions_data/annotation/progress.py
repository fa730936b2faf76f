"""Progress of a stage with people: which tasks have all their judgements, who has work left.

A task needs the stage's ``judgements`` from distinct members of its group, capped by the
group's size when it was pushed (the project's ``maximum_annotations``). Used by ``pull``
(under-judged tasks are reported), ``escalate`` (an incomplete source stage is refused unless
``--allow-incomplete``) and ``annotate status`` (counts per stage, group and annotator, read
from Label Studio like ``pull``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.annotation.protocol import Protocol, Stage
from emotions_data.annotation.state import State, project_key
from emotions_data.schema.errors import ConfigError

#: How many task ids a one-line message names before "...".
SHOWN = 5


@dataclass(frozen=True)
class TaskShort:
    """A task with fewer judgements than required."""

    video_id: str
    group: str
    have: int
    need: int
    #: Nobody who could still judge it is left in the group (``status`` with a groups manifest).
    stuck: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "group": self.group,
            "judgements": self.have,
            "required": self.need,
            "stuck": self.stuck,
        }

    def __str__(self) -> str:
        return f"{self.video_id} ({self.group}: {self.have} of {self.need})"


def required_judgements(state: State, stage: Stage, group: str) -> int:
    """The judgements a task of ``group`` needs: the stage's, capped by the members at push."""
    members = state.members.get(project_key(stage.name, group))
    return min(stage.judgements, len(members)) if members else stage.judgements


def task_table(state: State, stage: Stage, judgements: pd.DataFrame) -> pd.DataFrame:
    """One row per assigned task: group, video_id, judgements (distinct people), required."""
    rows = judgements[judgements["stage"] == stage.name] if "stage" in judgements else judgements
    have = rows.drop_duplicates(["video_id", "annotator_id"]).groupby("video_id").size()
    parts = []
    for group, vids in sorted(state.assignments.get(stage.name, {}).items()):
        parts.append(
            pd.DataFrame(
                {
                    "group": group,
                    "video_id": vids,
                    "judgements": have.reindex(vids, fill_value=0).to_numpy(dtype=np.int64),
                    "required": required_judgements(state, stage, group),
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=["group", "video_id", "judgements", "required"])
    return pd.concat(parts, ignore_index=True)


def under_judged(state: State, stage: Stage, judgements: pd.DataFrame) -> list[TaskShort]:
    table = task_table(state, stage, judgements)
    short = table[table["judgements"] < table["required"]]
    return [
        TaskShort(str(r.video_id), str(r.group), int(r.judgements), int(r.required))
        for r in short.itertuples()
    ]


def describe_short(tasks: list[TaskShort]) -> str:
    """``3 task(s) below their required judgements (2 started): v1 (A: 2 of 3), ...``"""
    started = sum(1 for t in tasks if t.have)
    shown = ", ".join(str(t) for t in tasks[:SHOWN]) + (" ..." if len(tasks) > SHOWN else "")
    return (
        f"{len(tasks)} task(s) below their required judgements ({started} started, "
        f"{len(tasks) - started} not started): {shown}"
    )


def check_complete(
    root: Path, protocol: Protocol, stages: tuple[str, ...], annotations: pd.DataFrame
) -> None:
    """Raise when a pushed source stage still has tasks short of their judgements."""
    state = State.load(root)
    for name in stages:
        stage = protocol.stage(name)
        if not stage.labels_items or name not in state.assignments:
            continue
        short = under_judged(state, stage, annotations)
        if short:
            raise ConfigError(
                f"stage {name} is incomplete: {describe_short(short)}; pull it again when they "
                "are done (`annotate status` shows who has work left), or pass --allow-incomplete"
            )


@dataclass
class StageStatus:
    stage: str
    required: int
    tasks: int = 0
    complete: int = 0
    judgements: int = 0
    missing: int = 0
    groups: list[dict[str, Any]] = field(default_factory=list)
    annotators: pd.DataFrame = field(default_factory=pd.DataFrame)
    short: list[TaskShort] = field(default_factory=list)
    empty: bool = False

    @property
    def stuck(self) -> list[TaskShort]:
        return [t for t in self.short if t.stuck]

    def to_dict(self) -> dict[str, Any]:
        table = self.annotators.astype(object).where(self.annotators.notna(), None)
        return {
            "stage": self.stage,
            "required": self.required,
            "tasks": self.tasks,
            "complete": self.complete,
            "judgements": self.judgements,
            "missing_judgements": self.missing,
            "empty": self.empty,
            "groups": self.groups,
            "annotators": table.to_dict(orient="records"),
            "under_judged": [t.to_dict() for t in self.short],
            "stuck": [t.video_id for t in self.stuck],
        }


def stage_status(
    state: State,
    stage: Stage,
    judgements: pd.DataFrame,
    groups: pd.DataFrame | None = None,
) -> StageStatus:
    """Counts of one pushed stage from its judgements as read from Label Studio.

    Per annotator: tasks judged (``done``), tasks of their project they have not judged and
    that still need a judgement (``remaining``), median lead time. A task is stuck when fewer
    people who have not judged it are left in its group (active ones, with ``groups``; else
    the members at push) than judgements it misses.
    """
    table = task_table(state, stage, judgements)
    status = StageStatus(stage.name, stage.judgements)
    if table.empty:
        status.empty = True
        return status
    rows = judgements.drop_duplicates(["video_id", "annotator_id"])
    judged_by = rows.groupby("video_id")["annotator_id"].agg(lambda s: set(s.astype(str)))
    people: list[dict[str, Any]] = []
    for group, part in table.groupby("group", sort=True):
        group = str(group)
        if groups is not None:
            active = groups[
                (groups["group_id"].astype(str) == group) & groups["active"].astype(bool)
            ]
            can = set(active["annotator_id"].astype(str))
        else:
            can = set(state.members.get(project_key(stage.name, group), []))
        open_tasks = part[part["judgements"] < part["required"]]
        for r in open_tasks.itertuples():
            left = can - judged_by.get(r.video_id, set())
            status.short.append(
                TaskShort(
                    str(r.video_id),
                    group,
                    int(r.judgements),
                    int(r.required),
                    stuck=len(left) < int(r.required) - int(r.judgements),
                )
            )
        mine = rows[rows["video_id"].isin(set(part["video_id"]))]
        status.groups.append(
            {
                "group": group,
                "tasks": len(part),
                "complete": int((part["judgements"] >= part["required"]).sum()),
                "required": int(part["required"].max()),
                "judgements": int(part["judgements"].sum()),
                "missing_judgements": int(
                    (part["required"] - part["judgements"]).clip(lower=0).sum()
                ),
            }
        )
        members = sorted(can | set(mine["annotator_id"].astype(str)))
        for person in members:
            done = mine[mine["annotator_id"].astype(str) == person]
            lead = pd.to_numeric(done.get("lead_time_s"), errors="coerce")
            undone = open_tasks[~open_tasks["video_id"].isin(set(done["video_id"]))]
            people.append(
                {
                    "annotator_id": person,
                    "group": group,
                    # still able to judge (active, with a groups manifest; else pushed to)
                    "active": person in can,
                    "done": len(done),
                    "remaining": len(undone) if person in can else 0,
                    "median_lead_time_s": float(lead.median()) if lead.notna().any() else None,
                }
            )
    status.tasks = len(table)
    status.complete = int((table["judgements"] >= table["required"]).sum())
    status.judgements = int(table["judgements"].sum())
    status.missing = int((table["required"] - table["judgements"]).clip(lower=0).sum())
    status.annotators = pd.DataFrame(
        people,
        columns=["annotator_id", "group", "active", "done", "remaining", "median_lead_time_s"],
    )
    return status


def format_status(statuses: list[StageStatus]) -> str:
    """The terminal text of ``annotate status``."""
    lines: list[str] = []
    for st in statuses:
        if st.empty:
            lines.append(f"stage {st.stage}: no item routed to it (nothing to do)")
            continue
        lines.append(
            f"stage {st.stage}: {st.complete}/{st.tasks} task(s) with all their judgements "
            f"(required {st.required} per task); {st.judgements} judgement(s), "
            f"{st.missing} still missing"
        )
        for g in st.groups:
            lines.append(
                f"  group {g['group']}: {g['complete']}/{g['tasks']} complete, "
                f"{g['missing_judgements']} judgement(s) missing"
            )
        if len(st.annotators):
            table = st.annotators.rename(columns={"median_lead_time_s": "median_lead_s"}).copy()
            table["active"] = table["active"].map({True: "yes", False: "no"})
            table["median_lead_s"] = [
                "n/a" if v is None or pd.isna(v) else f"{float(v):.1f}"
                for v in table["median_lead_s"]
            ]
            lines.extend("  " + line for line in table.to_string(index=False).splitlines())
        if st.short:
            lines.append(f"  {describe_short(st.short)}")
        if st.stuck:
            ids = ", ".join(str(t) for t in st.stuck[:SHOWN])
            lines.append(
                f"  {len(st.stuck)} stuck (fewer people left in the group who have not judged "
                f"them than judgements missing): {ids}{' ...' if len(st.stuck) > SHOWN else ''}"
            )
    return "\n".join(lines)
