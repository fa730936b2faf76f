"""The whole protocol in order, for the demo and for a lab that wants one call.

For each stage of the protocol: annotate stages are escalated (when they take items from earlier
stages), pushed, labelled by the simulated crowd (when ``simulate`` is given) and pulled;
evaluate stages update the groups manifest; then the labels are finalised. Without a simulated
crowd the run stops at the first stage whose tasks still miss judgements and says which; running
it again later picks up where it stopped (every step is idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.annotation.allocate import allocate_groups
from emotions_data.annotation.escalate import escalate
from emotions_data.annotation.evaluate import evaluate_stage
from emotions_data.annotation.finalize import finalize_labels, write_labels
from emotions_data.annotation.protocol import Protocol, load_protocol
from emotions_data.annotation.pull import pull_stage
from emotions_data.annotation.push import push_stage
from emotions_data.annotation.server import Server
from emotions_data.annotation.simulate import crowd_confusions, simulate_stage
from emotions_data.annotation.state import State
from emotions_data.annotation.store import read_annotations, read_groups, write_groups


@dataclass
class Simulation:
    """A simulated crowd: the true label per video and the roster with ``sim_*`` columns."""

    truth: pd.Series
    roster: pd.DataFrame
    seed: int = 0


@dataclass
class ProtocolRun:
    groups_path: Path
    annotations_path: Path
    labels_path: Path | None
    waiting_for: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)


def protocol_paths(root: Path) -> dict[str, Path]:
    """The dataset-root layout shared with split, variants, stats and release (DESIGN.md)."""
    base = Path(root)
    return {
        "groups": base / "groups.parquet",
        "annotations": base / "annotations.parquet",
        "labels": base / "labels.parquet",
    }


def _complete(
    root: Path, stage: str, annotations: pd.DataFrame, groups: pd.DataFrame, judgements: int
) -> bool:
    """Every task of the stage has its judgements (capped by the group's active size)."""
    state = State.load(root)
    rows = annotations[annotations["stage"] == stage]
    got = rows.groupby("video_id").size()
    for group, vids in state.assignments.get(stage, {}).items():
        members = groups[(groups["group_id"] == group) & groups["active"]]
        need = min(judgements, len(members))
        if any(int(got.get(v, 0)) < need for v in vids):
            return False
    return True


def run_protocol(
    root: Path,
    videos: pd.DataFrame,
    roster: pd.DataFrame,
    protocol: Protocol | str | Path | None,
    server: Server,
    *,
    simulate: Simulation | None = None,
    seed: int = 0,
    method: str | None = None,
) -> ProtocolRun:
    """Allocate, then every stage of ``protocol`` in order, then finalize (see module doc)."""
    root = Path(root)
    proto = load_protocol(protocol)
    paths = protocol_paths(root)
    run = ProtocolRun(paths["groups"], paths["annotations"], None)
    if paths["groups"].exists():
        groups = read_groups(paths["groups"])
    else:
        allocation = allocate_groups(roster, proto.groups, seed=seed)
        groups = allocation.groups
        write_groups(groups, paths["groups"], params={"groups": proto.groups, "seed": seed})
        run.steps.append({"step": "allocate", "imbalance": allocation.imbalance})
    confusions = crowd_confusions(simulate.roster, proto.taxonomy) if simulate else {}
    for stage in proto.stages:
        annotations = read_annotations(paths["annotations"], proto.taxonomy)
        if stage.kind == "evaluate":
            result = evaluate_stage(proto, stage.name, annotations, groups)
            groups = result.groups
            write_groups(groups, paths["groups"], params={"stage": stage.name})
            run.steps.append(
                {
                    "step": stage.name,
                    "flagged": result.flagged,
                    "moved": result.moved,
                    "group_alpha": result.group_alpha,
                }
            )
            continue
        if stage.source != "all":
            esc = escalate(root, proto, stage.name, annotations, groups)
            run.steps.append({"step": f"escalate {stage.name}", **esc.to_dict()})
            if not any(esc.assignment.values()):
                continue
        pushed = push_stage(root, server, proto, stage.name, videos, groups, seed=seed)
        run.steps.append({"step": f"push {stage.name}", **pushed.to_dict()})
        if simulate is not None:
            sim_seed = int(
                np.random.default_rng([simulate.seed, proto.index(stage.name)]).integers(2**31)
            )
            sim = simulate_stage(
                root, server, proto, stage.name, groups, simulate.truth, confusions, seed=sim_seed
            )
            run.steps.append({"step": f"simulate {stage.name}", **sim.to_dict()})
        pulled = pull_stage(root, server, proto, stage.name, paths["annotations"], groups=groups)
        run.steps.append({"step": f"pull {stage.name}", **pulled.to_dict()})
        annotations = read_annotations(paths["annotations"], proto.taxonomy)
        if not _complete(root, stage.name, annotations, groups, stage.judgements):
            run.waiting_for = stage.name
            return run
    annotations = read_annotations(paths["annotations"], proto.taxonomy)
    final = finalize_labels(proto, annotations, groups, method=method, seed=seed)
    run.labels_path = write_labels(
        final, paths["labels"], proto, [paths["annotations"], paths["groups"]]
    )
    run.unresolved = final.unresolved
    run.steps.append({"step": "finalize", **final.to_dict()})
    return run
