"""The whole protocol in order (``annotate run``, the demo, a lab that wants one call).

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

from emotions_data.annotation.commands import (
    allocate_command,
    applied_evaluations,
    escalate_command,
    evaluate_command,
    finalize_command,
    pull_command,
    push_command,
    simulate_command,
)
from emotions_data.annotation.endpoint import Server
from emotions_data.annotation.escalate import EscalateResult
from emotions_data.annotation.progress import under_judged
from emotions_data.annotation.protocol import Protocol, Stage, load_protocol
from emotions_data.annotation.simulate import read_truth
from emotions_data.annotation.state import State
from emotions_data.annotation.store import read_annotations, read_groups
from emotions_data.schema.io import read_manifest, read_table_file
from emotions_data.schema.safety import root_lock


@dataclass
class Simulation:
    """A simulated crowd: the true label per video and the roster with ``sim_*`` columns."""

    truth: pd.Series
    roster: pd.DataFrame
    seed: int = 0

    @classmethod
    def from_files(cls, truth: Path, roster: pd.DataFrame | Path, seed: int = 0) -> Simulation:
        """The true labels of a CSV/Parquet (video_id, label) and a roster table or file."""
        table = roster if isinstance(roster, pd.DataFrame) else read_table_file(Path(roster))
        return cls(read_truth(truth), table, seed)


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
    _, evaluated = applied_evaluations(protocol_paths(root)["groups"])
    started = any(s.name in (state.assignments if s.labels_items else evaluated) for s in later)
    if stage.name in state.assignments and started:
        return EscalateResult(stage.name, state.assignments[stage.name], kept=True)
    return escalate_command(root, proto, stage.name, annotations, groups)


def run_protocol(
    root: Path,
    videos: pd.DataFrame | Path,
    roster: pd.DataFrame | Path,
    protocol: Protocol | str | Path | None,
    server: Server,
    *,
    simulate: Simulation | None = None,
    seed: int = 0,
    method: str | None = None,
) -> ProtocolRun:
    """Allocate, then every stage of ``protocol`` in order, then finalize (see module doc).

    The ``annotate run`` command: holds the root's write lock throughout; each step is the
    function its own command calls (``annotation.commands``)."""
    root = Path(root)
    proto = load_protocol(protocol)
    paths = protocol_paths(root)
    run = ProtocolRun(paths["groups"], paths["annotations"], None)
    frame = _videos(videos)
    with root_lock(root):
        if not paths["groups"].exists():
            allocated = allocate_command(roster, paths["groups"], proto, seed=seed)
            run.steps.append({"step": "allocate", "imbalance": allocated.allocation.imbalance})
        for stage in proto.stages:
            if not _run_stage(root, proto, stage, frame, server, simulate, seed, run):
                run.waiting_for = stage.name
                return run
        final = finalize_command(
            proto,
            paths["annotations"],
            paths["labels"],
            groups_path=paths["groups"],
            method=method,
            seed=seed,
        )
    run.labels_path = paths["labels"]
    run.unresolved = final.unresolved
    run.steps.append({"step": "finalize", **final.to_dict()})
    return run


def _run_stage(
    root: Path,
    proto: Protocol,
    stage: Stage,
    videos: pd.DataFrame,
    server: Server,
    simulate: Simulation | None,
    seed: int,
    run: ProtocolRun,
) -> bool:
    """One stage: evaluate, or escalate, push, simulate and pull; False while it waits for
    judgements. The groups are always read back, so a first run and a re-run see the same."""
    paths = protocol_paths(root)
    groups = read_groups(paths["groups"])
    annotations = read_annotations(paths["annotations"], proto.taxonomy)
    if stage.kind == "evaluate":
        outcome = evaluate_command(proto, stage.name, paths["annotations"], paths["groups"])
        run.steps.append({"step": stage.name, **outcome})
        return True
    if stage.source != "all":
        esc = _escalate(root, proto, stage, annotations, groups)
        run.steps.append({"step": f"escalate {stage.name}", **esc.to_dict()})
        if not any(esc.assignment.values()):
            return True
    pushed = push_command(root, server, proto, stage.name, videos, groups, seed=seed)
    run.steps.append({"step": f"push {stage.name}", **pushed.to_dict()})
    if simulate is not None:
        # one seed per stage, from the crowd's seed and the stage's place in the protocol
        rng = np.random.default_rng([simulate.seed, proto.index(stage.name)])
        sim = simulate_command(
            root,
            server,
            proto,
            stage.name,
            groups,
            simulate.truth,
            simulate.roster,
            seed=int(rng.integers(2**31)),
        )
        run.steps.append({"step": f"simulate {stage.name}", **sim.to_dict()})
    pulled = pull_command(root, server, proto, stage.name, paths["annotations"], groups=groups)
    run.steps.append({"step": f"pull {stage.name}", **pulled.to_dict()})
    return _complete(root, stage, read_annotations(paths["annotations"], proto.taxonomy))


def _videos(videos: pd.DataFrame | Path) -> pd.DataFrame:
    if isinstance(videos, pd.DataFrame):
        return videos
    return read_manifest(Path(videos), "videos").df
