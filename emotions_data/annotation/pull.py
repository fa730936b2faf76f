"""``pull`` (a stage's projects from the server) and ``import`` (a Label Studio export file).

Both map Label Studio users to roster annotator ids, replace the stage's rows of the annotations
manifest and leave the rest. Neither replaces a stage's judgements with fewer rows unless asked
(``force``): a lost state or an emptied project must not wipe what was already pulled. Judgements by people outside the project's group are counted and
written apart (``<out>.outside.parquet``), never mixed into the stage's judgements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.annotation.client import USER_DOMAIN, Client
from emotions_data.annotation.exports import ParseReport, load_export_file, parse_export
from emotions_data.annotation.localdb import local_database, read_project_tasks
from emotions_data.annotation.progress import TaskShort, under_judged
from emotions_data.annotation.protocol import Protocol
from emotions_data.annotation.recovery import recover_state
from emotions_data.annotation.server import Server
from emotions_data.annotation.state import State, project_key
from emotions_data.annotation.store import (
    read_annotations,
    replace_stage,
    write_annotations_if_changed,
)
from emotions_data.schema.errors import ConfigError, EmotionsDataError, ManifestError
from emotions_data.schema.io import read_table_file
from emotions_data.schema.safety import check_safe_name
from emotions_data.schema.taxonomy import Taxonomy


@dataclass
class PullResult:
    stage: str
    out: Path
    rows: int
    written: bool
    report: ParseReport
    outside: int = 0
    outside_path: Path | None = None
    projects: dict[str, int] = field(default_factory=dict)
    #: Tasks with fewer judgements than required (``progress.TaskShort``)
    under_judged: list[TaskShort] = field(default_factory=list)
    #: Nothing was routed to the stage: it pulled as empty.
    empty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "empty": self.empty,
            "under_judged": len(self.under_judged),
            # the first ones only: `annotate status --json` lists them all
            "under_judged_tasks": [t.to_dict() for t in self.under_judged[:UNDER_JUDGED_SHOWN]],
            "out": str(self.out),
            "rows": self.rows,
            "written": self.written,
            "outside_group": self.outside,
            "outside_path": str(self.outside_path) if self.outside_path else None,
            "projects": self.projects,
            **{f"count_{k}": v for k, v in self.report.to_dict().items()},
        }


VIA = ("auto", "api", "database")
#: Under-judged tasks listed in ``PullResult.to_dict`` (a stage waiting for people has them all).
UNDER_JUDGED_SHOWN = 50


class StageShrinkError(EmotionsDataError):
    """A pull or import would replace a stage's judgements with fewer rows (and was not forced)."""


def outside_path(out: Path) -> Path:
    return out.with_name(out.stem + ".outside.parquet")


def _annotator_mapper(users: dict[int, str]) -> Any:
    def annotator_of(key: int | str | None) -> str:
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            return users.get(int(key), f"ls-user-{key}")
        if isinstance(key, str):
            # An export with e-mails: our own accounts carry the annotator id before the '@'.
            local, _, domain = key.partition("@")
            return local if domain == USER_DOMAIN else key
        return "ls-user-unknown"

    return annotator_of


def _write(
    new: pd.DataFrame,
    out: Path,
    stage: str,
    taxonomy: Taxonomy,
    params: dict[str, Any],
    force: bool = True,
) -> tuple[int, bool]:
    existing = read_annotations(out, taxonomy)
    before = int((existing["stage"] == stage).sum()) if len(existing) else 0
    if len(new) < before and not force:
        raise StageShrinkError(
            f"{out}: stage {stage!r} has {before} judgement(s) and this would leave {len(new)} "
            f"({before - len(new)} lost); nothing written. Check the server and the state, "
            "or pass --force to replace them"
        )
    merged = replace_stage(existing, new, stage)
    written = write_annotations_if_changed(merged, out, taxonomy=taxonomy, params=params)
    return int((merged["stage"] == stage).sum()), written


@dataclass
class StageJudgements:
    """A stage's judgements as read from its projects: in the group, by outsiders, counts."""

    inside: pd.DataFrame
    outside: pd.DataFrame
    report: ParseReport
    projects: dict[str, int]


def check_labels(report: ParseReport, taxonomy: Taxonomy, what: str, option: str) -> None:
    """Labels outside the taxonomy mean the wrong taxonomy was given: an error, not a skip.

    Label Studio only offers the choices of the project's label config, made from the taxonomy
    at push, so a label it does not know is never one annotator's slip.
    """
    if not report.unknown_labels:
        return
    seen = sorted(report.unknown_labels, key=lambda k: (-report.unknown_labels[k], k))
    shown = ", ".join(repr(label) for label in seen[:5]) + (" ..." if len(seen) > 5 else "")
    raise ConfigError(
        f"{what}: {report.unknown_label} judgement(s) have labels outside taxonomy "
        f"{taxonomy.name!r} ({', '.join(taxonomy.classes)}): {shown}; give the {option} "
        "the projects were made with"
    )


def read_stage(
    root: Path,
    server: Server,
    protocol: Protocol,
    stage_name: str,
    *,
    groups: pd.DataFrame | None = None,
    strict: bool = False,
    via: str = "auto",
) -> StageJudgements:
    """The stage's judgements from its projects (``pull`` writes them, ``status`` counts them)."""
    stage = protocol.stage(stage_name)
    state = State.load(root)
    if state.server_url and state.server_url != server.identity:
        raise ConfigError(
            f"stage {stage.name!r} was pushed to {state.server_url}, not {server.identity}"
        )
    client = Client(server)
    # A lost or stale state: the stage's projects are found again on the server (in memory
    # only: ``status`` reads through here; ``pull`` saves what it found before it reads).
    recover_state(state, client, server, save=False)
    projects = state.stage_projects(stage.name)
    if not projects:
        raise ConfigError(f"stage {stage.name!r} has no Label Studio project yet; push it first")
    if via not in VIA:
        raise ConfigError(f"--via {via!r} is not allowed; allowed: {', '.join(VIA)}")
    db = local_database(server.data_dir) if via != "api" else None
    if via == "database" and db is None:
        raise ConfigError("--via database needs the embedded server (no database for this server)")
    # Accounts made by ``push`` carry the annotator id in their e-mail: the state may lag.
    names = {
        uid: email.partition("@")[0]
        for email, uid in client.users_by_email().items()
        if email.endswith("@" + USER_DOMAIN)
    }
    names.update(state.user_names())
    mapper = _annotator_mapper(names)
    members: dict[str, set[str]] | None = None
    if groups is not None:
        members = {
            str(g): set(rows["annotator_id"].astype(str)) for g, rows in groups.groupby("group_id")
        }
    report = ParseReport()
    inside, outside = [], []
    for group, pid in sorted(projects.items()):
        tasks = read_project_tasks(db, pid) if db is not None else client.export_tasks(pid)
        frame, rep = parse_export(
            tasks,
            stage=stage.name,
            taxonomy=protocol.taxonomy,
            annotator_of=mapper,
            source="label-studio",
            origin=f"project {pid} ({stage.name}/{group})",
            group_id=group,
            project_id=pid,
            strict=strict,
        )
        report.add(rep)
        pushed_to = set(state.members.get(project_key(stage.name, group), []))
        if members is not None or pushed_to:
            allowed = pushed_to | (members or {}).get(group, set())
            ok = frame["annotator_id"].isin(allowed)
        else:
            ok = ~frame["annotator_id"].str.startswith("ls-user-")
        inside.append(frame[ok])
        outside.append(frame[~ok])
    check_labels(
        report,
        protocol.taxonomy,
        f"stage {stage.name} (protocol {protocol.name!r}, {protocol.source})",
        "--protocol",
    )
    return StageJudgements(
        inside=pd.concat(inside, ignore_index=True),
        outside=pd.concat(outside, ignore_index=True),
        report=report,
        projects=projects,
    )


def pull_stage(
    root: Path,
    server: Server,
    protocol: Protocol,
    stage_name: str,
    out: Path,
    *,
    groups: pd.DataFrame | None = None,
    strict: bool = False,
    via: str = "auto",
    force: bool = False,
) -> PullResult:
    """The stage's judgements into ``out`` (replacing the stage's earlier rows).

    ``via``: ``database`` reads the embedded server's SQLite (fast), ``api`` uses export
    snapshots (any server), ``auto`` the first that applies. A stage whose assignment holds no
    item (nothing routed to it) pulls as empty. Tasks still short of their judgements are
    listed in ``under_judged``.
    """
    stage = protocol.stage(stage_name)
    params = {"stage": stage.name, "protocol": protocol.name, "server": server.url}
    state = State.load(root)
    if state.server_url in (None, server.identity):
        # A lost or stale state is rebuilt from the server and kept (pull holds the root lock).
        recover_state(state, Client(server), server)
    assignment = state.assignments.get(stage.name)
    if assignment is not None and not any(assignment.values()):
        empty = read_annotations(None).iloc[:0]
        rows, written = _write(empty, out, stage.name, protocol.taxonomy, params, force)
        return PullResult(
            stage=stage.name, out=out, rows=rows, written=written, report=ParseReport(), empty=True
        )
    read = read_stage(root, server, protocol, stage.name, groups=groups, strict=strict, via=via)
    new, apart, report = read.inside, read.outside, read.report
    report.outside_group = len(apart)
    if strict and len(apart):
        first = apart.iloc[0]
        raise ManifestError(
            [
                f"stage {stage.name}: video {first['video_id']!r} judged by {first['annotator_id']!r}, "
                f"who is not in group {first['group_id']!r} ({len(apart)} such judgement(s))"
            ]
        )
    rows, written = _write(new, out, stage.name, protocol.taxonomy, params, force)
    apart_path = None
    if len(apart):
        apart_path = outside_path(out)
        _write(apart, apart_path, stage.name, protocol.taxonomy, params)
    return PullResult(
        stage=stage.name,
        out=out,
        rows=rows,
        written=written,
        report=report,
        outside=len(apart),
        outside_path=apart_path,
        projects=read.projects,
        under_judged=under_judged(state, stage, new),
    )


def read_user_map(path: Path) -> dict[int | str, str]:
    """``users.csv``: annotator_id plus ls_user_id and/or email columns."""
    table = read_table_file(path)
    if "annotator_id" not in table.columns or not ({"ls_user_id", "email"} & set(table.columns)):
        raise ManifestError(
            [f"{path}: a user map needs 'annotator_id' and 'ls_user_id' or 'email' columns"]
        )
    out: dict[int | str, str] = {}
    for _, row in table.iterrows():
        aid = str(row["annotator_id"])
        if "ls_user_id" in table.columns and str(row["ls_user_id"]).strip():
            try:
                out[int(str(row["ls_user_id"]).strip())] = aid
            except ValueError:
                raise ManifestError(
                    [f"{path}: ls_user_id {row['ls_user_id']!r} of {aid!r} is not an integer"]
                ) from None
        if "email" in table.columns and str(row["email"]).strip():
            out[str(row["email"]).strip()] = aid
    return out


def import_export(
    export_file: Path,
    stage: str,
    out: Path,
    taxonomy: Taxonomy,
    *,
    users: Path | None = None,
    group_id: str | None = None,
    strict: bool = False,
    force: bool = False,
) -> PullResult:
    """Judgements from a Label Studio JSON export made elsewhere, as the ``stage``'s rows."""
    check_safe_name(stage, "stage name")
    if group_id is not None:
        check_safe_name(group_id, "group name")
    tasks = load_export_file(export_file)
    mapping = read_user_map(users) if users else {}

    def annotator_of(key: int | str | None) -> str:
        if key is None:
            return "ls-user-unknown"
        if isinstance(key, str) and key.isdigit():
            key = int(key)
        if key in mapping:
            return mapping[key]
        if mapping:
            raise ManifestError([f"{export_file}: Label Studio user {key!r} is not in {users}"])
        return f"ls-user-{key}" if isinstance(key, int) else str(key)

    frame, report = parse_export(
        tasks,
        stage=stage,
        taxonomy=taxonomy,
        annotator_of=annotator_of,
        source="import",
        origin=str(export_file),
        group_id=group_id,
        strict=strict,
    )
    check_labels(report, taxonomy, str(export_file), "--taxonomy")
    params = {"stage": stage, "import": str(export_file)}
    rows, written = _write(frame, out, stage, taxonomy, params, force)
    return PullResult(stage=stage, out=out, rows=rows, written=written, report=report)
