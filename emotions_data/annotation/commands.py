"""One library function per ``annotate`` command: validation, the root lock, the write.

``emotions-data annotate ...`` (``cli/annotate.py``), the protocol runner (``runner``, which is
the ``annotate run`` command itself) and the demo all call these, so a step is done one way
whichever way it is started: ``allocate`` always checks the roster against the protocol, every
writer holds the dataset root's write lock (``schema.safety.root_lock``; re-entrant, so the
runner holds it once around the steps it calls), and every manifest is written atomically by
the store it belongs to. They raise the library's typed errors; only the CLI turns those into
messages.

Inputs a caller may hold in memory (the runner's videos and groups) are accepted as frames or
as manifest paths. A command that writes one file without ``--root`` locks that file's folder
(the root in the layout, ``runner.protocol_paths``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from emotions_data.annotation.accounts import AccountsResult, sync_accounts
from emotions_data.annotation.allocate import Allocation, allocate_groups, allocation_summary
from emotions_data.annotation.check import CheckReport, check_roster, check_setup
from emotions_data.annotation.endpoint import Server
from emotions_data.annotation.escalate import EscalateResult, escalate
from emotions_data.annotation.evaluate import annotator_table, evaluate_stage
from emotions_data.annotation.finalize import FinalizeResult, finalize_labels, write_labels
from emotions_data.annotation.protocol import Protocol, load_protocol
from emotions_data.annotation.pull import PullResult, import_export, pull_stage
from emotions_data.annotation.push import PushResult, push_stage
from emotions_data.annotation.simulate import SimulateResult, crowd_confusions, simulate_stage
from emotions_data.annotation.store import read_annotations, read_groups, write_groups
from emotions_data.schema.io import read_manifest, read_table_file
from emotions_data.schema.safety import root_lock
from emotions_data.schema.taxonomy import load_taxonomy

#: A protocol object, a bundled name or a YAML path; ``None``: the default protocol.
ProtocolRef: TypeAlias = Protocol | str | Path | None
#: A frame in memory or the manifest / table file that holds it.
Table: TypeAlias = "pd.DataFrame | Path"


def _groups(groups: Table | None) -> pd.DataFrame | None:
    if groups is None or isinstance(groups, pd.DataFrame):
        return groups
    return read_groups(Path(groups))


def _videos(videos: Table) -> pd.DataFrame:
    if isinstance(videos, pd.DataFrame):
        return videos
    return read_manifest(Path(videos), "videos").df


def _table(table: Table) -> pd.DataFrame:
    return table if isinstance(table, pd.DataFrame) else read_table_file(Path(table))


@dataclass
class AllocateResult:
    allocation: Allocation
    check: CheckReport
    path: Path
    summary: dict[str, Any] = field(default_factory=dict)


def allocate_command(
    roster: Table,
    out: Path,
    protocol: ProtocolRef = None,
    *,
    groups: int | None = None,
    seed: int = 0,
) -> AllocateResult:
    """Check ``roster`` against the protocol (``annotate check``), allocate ``groups`` (default:
    the protocol's) balanced groups with one leader each, and write the groups manifest."""
    proto = load_protocol(protocol)
    k = groups or proto.groups
    table = _table(roster)
    where = str(roster) if isinstance(roster, Path) else "roster"
    check = check_roster(table, proto, k, where=where)
    check.raise_errors()
    allocation = allocate_groups(table, k, seed=seed, min_group_size=check.needed_size)
    params: dict[str, Any] = {"groups": k, "seed": seed}
    if isinstance(roster, Path):
        params["roster"] = str(roster)
    with root_lock(out.parent):
        write_groups(allocation.groups, out, params=params)
    return AllocateResult(allocation, check, out, allocation_summary(allocation))


def check_command(
    protocol: ProtocolRef = None,
    *,
    groups: Table | None = None,
    roster: Table | None = None,
    n_groups: int | None = None,
) -> tuple[Protocol, CheckReport]:
    """The protocol against a roster or a groups manifest (read only: no lock)."""
    proto = load_protocol(protocol)
    report = check_setup(
        proto,
        groups=_groups(groups),
        roster=_table(roster) if roster is not None else None,
        n_groups=n_groups,
    )
    return proto, report


def users_command(
    root: Path,
    server: Server,
    groups: Table,
    protocol: ProtocolRef = None,
    *,
    out: Path | None = None,
    reset: bool = False,
) -> AccountsResult:
    """One Label Studio account per member of ``groups``, under the root's lock."""
    proto = load_protocol(protocol)
    members = _groups(groups)
    assert members is not None
    with root_lock(root):
        return sync_accounts(
            root, server, members, out=out, reset=reset, stage_order=[s.name for s in proto.stages]
        )


def push_command(
    root: Path,
    server: Server,
    protocol: ProtocolRef,
    stage: str,
    videos: Table,
    groups: Table,
    *,
    seed: int = 0,
) -> PushResult:
    """The stage's projects and tasks on Label Studio (idempotent), under the root's lock."""
    proto = load_protocol(protocol)
    members = _groups(groups)
    assert members is not None
    with root_lock(root):
        return push_stage(root, server, proto, stage, _videos(videos), members, seed=seed)


def pull_command(
    root: Path,
    server: Server,
    protocol: ProtocolRef,
    stage: str,
    out: Path,
    *,
    groups: Table | None = None,
    strict: bool = False,
    via: str = "auto",
    force: bool = False,
) -> PullResult:
    """The stage's judgements into the annotations manifest ``out``, under the root's lock."""
    proto = load_protocol(protocol)
    with root_lock(root):
        return pull_stage(
            root,
            server,
            proto,
            stage,
            out,
            groups=_groups(groups),
            strict=strict,
            via=via,
            force=force,
        )


def import_command(
    export: Path,
    stage: str,
    out: Path,
    *,
    taxonomy: str | Path | None = None,
    users: Path | None = None,
    group_id: str | None = None,
    strict: bool = False,
    force: bool = False,
) -> PullResult:
    """Judgements of a Label Studio export made elsewhere into ``out``, under its folder's lock."""
    tax = load_taxonomy(taxonomy)
    with root_lock(out.parent):
        return import_export(
            export, stage, out, tax, users=users, group_id=group_id, strict=strict, force=force
        )


def applied_evaluations(groups_path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The groups, and evaluate stage -> outcome of every evaluation applied to them so far."""
    manifest = read_manifest(groups_path, "groups")
    done = manifest.meta.params.get("evaluations")
    return manifest.df, dict(done) if isinstance(done, dict) else {}


def evaluate_command(
    protocol: ProtocolRef,
    stage: str,
    annotations_path: Path,
    groups_path: Path,
    out: Path | None = None,
) -> dict[str, Any]:
    """Evaluate once: the outcome is recorded in the groups manifest it changed, and read back.

    Evaluating again would judge groups this evaluation (and later ones) already changed: the
    annotators it removed are inactive, so it would flag nobody, and it would rewrite the
    groups manifest. The record (``params.evaluations``, every evaluation applied so far) is
    written with the groups (to ``out``, default ``groups_path``) in one atomic write, under
    that folder's lock, so they can never disagree.
    """
    proto = load_protocol(protocol)
    annotations = read_annotations(annotations_path, proto.taxonomy)
    target = out or groups_path
    with root_lock(target.parent):
        groups, done = applied_evaluations(groups_path)
        if stage in done:
            flagged = list(done[stage].get("flagged", []))
            table = annotator_table(proto, stage, annotations, flagged)
            return {**done[stage], "already_evaluated": True, "annotators": table}
        result = evaluate_stage(proto, stage, annotations, groups)
        done[stage] = {
            "flagged": result.flagged,
            "moved": result.moved,
            "group_alpha": result.group_alpha,
        }
        write_groups(
            result.groups,
            target,
            params={"stage": stage, "evaluations": done},
            parents=[annotations_path],
        )
    table = annotator_table(proto, stage, annotations, result.flagged)
    return {**done[stage], "already_evaluated": False, "annotators": table}


def escalate_command(
    root: Path,
    protocol: ProtocolRef,
    to_stage: str,
    annotations: Table,
    groups: Table | None = None,
    *,
    from_stages: tuple[str, ...] = (),
    allow_incomplete: bool = False,
) -> EscalateResult:
    """Route items to ``to_stage`` by the protocol's rule, under the root's lock."""
    proto = load_protocol(protocol)
    judged = (
        annotations
        if isinstance(annotations, pd.DataFrame)
        else read_annotations(annotations, proto.taxonomy)
    )
    with root_lock(root):
        return escalate(
            root,
            proto,
            to_stage,
            judged,
            _groups(groups),
            from_stages=from_stages,
            allow_incomplete=allow_incomplete,
        )


def finalize_command(
    protocol: ProtocolRef,
    annotations_path: Path,
    out: Path,
    *,
    groups_path: Path | None = None,
    method: str | None = None,
    seed: int = 0,
) -> FinalizeResult:
    """One label per video into the labels manifest ``out``, under its folder's lock."""
    proto = load_protocol(protocol)
    result = finalize_labels(
        proto,
        read_annotations(annotations_path, proto.taxonomy),
        _groups(groups_path),
        method=method,
        seed=seed,
    )
    parents = [annotations_path] + ([groups_path] if groups_path else [])
    with root_lock(out.parent):
        write_labels(result, out, proto, parents)
    return result


def simulate_command(
    root: Path,
    server: Server,
    protocol: ProtocolRef,
    stage: str,
    groups: Table,
    truth: pd.Series,
    roster: Table,
    *,
    seed: int = 0,
    bulk: bool = False,
) -> SimulateResult:
    """A simulated crowd (``roster``'s ``sim_*`` columns) labels the stage's tasks through the
    real API, under the root's lock."""
    proto = load_protocol(protocol)
    members = _groups(groups)
    assert members is not None
    confusions = crowd_confusions(_table(roster), proto.taxonomy)
    with root_lock(root):
        return simulate_stage(
            root, server, proto, stage, members, truth, confusions, seed=seed, bulk=bulk
        )
