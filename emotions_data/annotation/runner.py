"""The whole protocol in order, for the demo and for a lab that wants one call.

For each stage of the protocol: annotate stages are escalated (when they take items from earlier
stages), pushed, labelled by the simulated crowd (when ``simulate`` is given) and pulled;
evaluate stages update the groups manifest; then the labels are finalised. Without a simulated
crowd the run stops at the first stage whose tasks still miss judgements and says which; running
it again later picks up where it stopped (every step is idempotent).

A re-run sees the groups as the last evaluation left them, not as each stage saw them, so
nothing already decided is decided again: pushed assignments come from the state file, an
evaluation's outcome from the groups manifest it changed (``params.evaluations``), a finished
stage's tasks count judgements of annotators removed since, and manifests are only rewritten
when their rows change. A second run of a finished protocol changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.annotation.allocate import allocate_groups
from emotions_data.annotation.check import needed_group_size
from emotions_data.annotation.escalate import EscalateResult, escalate
from emotions_data.annotation.evaluate import annotator_table, evaluate_stage
from emotions_data.annotation.finalize import finalize_labels, write_labels
from emotions_data.annotation.progress import under_judged
from emotions_data.annotation.protocol import Protocol, Stage, load_protocol
from emotions_data.annotation.pull import pull_stage
from emotions_data.annotation.push import push_stage
from emotions_data.annotation.server import Server
from emotions_data.annotation.simulate import crowd_confusions, simulate_stage
from emotions_data.annotation.state import State
from emotions_data.annotation.store import read_annotations, read_groups, write_groups
from emotions_data.schema.io import read_manifest


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
    """The dataset-root layout shared with split, variants, stats and release (docs/design.md "A dataset root")."""
    base = Path(root)
    return {
        "groups": base / "groups.parquet",
        "annotations": base / "annotations.parquet",
        "labels": base / "labels.parquet",
    }


def _complete(root: Path, stage: Stage, annotations: pd.DataFrame) -> bool:
    """Every task of the stage has its judgements: the test ``escalate`` applies next."""
    return not under_judged(State.load(root), stage, annotations)


def _evaluations(groups_path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The groups, and evaluate stage -> outcome of every evaluation applied to them so far."""
    manifest = read_manifest(groups_path, "groups")
    done = manifest.meta.params.get("evaluations")
    return manifest.df, dict(done) if isinstance(done, dict) else {}


def evaluate_once(
    groups_path: Path,
    annotations_path: Path,
    proto: Protocol,
    stage: str,
    annotations: pd.DataFrame,
    out: Path | None = None,
) -> dict[str, Any]:
    """Evaluate once: the outcome is recorded in the groups manifest it changed, and read back.

    Evaluating again would judge groups this evaluation (and later ones) already changed: the
    annotators it removed are inactive, so it would flag nobody, and it would rewrite the
    groups manifest. The record (``params.evaluations``, every evaluation applied so far) is
    written with the groups (to ``out``, default ``groups_path``) in one atomic write, so they
    can never disagree. ``annotate evaluate`` and ``run_protocol`` both go through here.
    """
    groups, done = _evaluations(groups_path)
    if stage in done:
        table = annotator_table(proto, stage, annotations, list(done[stage].get("flagged", [])))
        return {**done[stage], "already_evaluated": True, "annotators": table}
    result = evaluate_stage(proto, stage, annotations, groups)
    done[stage] = {
        "flagged": result.flagged,
        "moved": result.moved,
        "group_alpha": result.group_alpha,
    }
    write_groups(
        result.groups,
        out or groups_path,
        params={"stage": stage, "evaluations": done},
        parents=[annotations_path],
    )
    table = annotator_table(proto, stage, annotations, result.flagged)
    return {**done[stage], "already_evaluated": False, "annotators": table}


def _escalate(
    root: Path, proto: Protocol, stage: Stage, annotations: pd.DataFrame, groups: pd.DataFrame
) -> EscalateResult:
    """The stage's items; kept as decided once the protocol has gone past the stage.

    ``escalate`` keeps a pushed assignment itself. An empty one (nothing disputed) is never
    pushed, so without this a re-run would decide again on the groups of a later evaluation
    (more judgements left out) and could send items to a stage the first run skipped.
    """
    state = State.load(root)
    later = proto.stages[proto.index(stage.name) + 1 :]
    _, evaluated = _evaluations(protocol_paths(root)["groups"])
    started = any(s.name in (state.assignments if s.labels_items else evaluated) for s in later)
    if stage.name in state.assignments and started:
        return EscalateResult(stage.name, state.assignments[stage.name], kept=True)
    return escalate(root, proto, stage.name, annotations, groups)


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
    if not paths["groups"].exists():
        allocation = allocate_groups(
            roster, proto.groups, seed=seed, min_group_size=needed_group_size(proto)[0]
        )
        write_groups(
            allocation.groups, paths["groups"], params={"groups": proto.groups, "seed": seed}
        )
        run.steps.append({"step": "allocate", "imbalance": allocation.imbalance})
    # Always the groups as read back, so a first run and a re-run see the same frame.
    groups = read_groups(paths["groups"])
    confusions = crowd_confusions(simulate.roster, proto.taxonomy) if simulate else {}
    for stage in proto.stages:
        annotations = read_annotations(paths["annotations"], proto.taxonomy)
        if stage.kind == "evaluate":
            run.steps.append(
                {
                    "step": stage.name,
                    **evaluate_once(
                        paths["groups"], paths["annotations"], proto, stage.name, annotations
                    ),
                }
            )
            groups = read_groups(paths["groups"])
            continue
        if stage.source != "all":
            esc = _escalate(root, proto, stage, annotations, groups)
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
        if not _complete(root, stage, annotations):
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
