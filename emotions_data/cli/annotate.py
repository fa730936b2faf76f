"""``emotions-data annotate``: the Label Studio server and the multi-stage annotation protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from emotions_data.cli.annotate_server import server
from emotions_data.cli.common import Settings, emit_json, pass_settings

ROOT = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Dataset root (holds labelstudio/ and annotation/state.json).",
)
LS_URL = click.option(
    "--ls-url",
    help="Use an existing Label Studio (token from LABEL_STUDIO_API_KEY) instead of the embedded one.",
)
PROTOCOL = click.option(
    "--protocol",
    default="emotions",
    show_default=True,
    help="Protocol name (annotation/protocols/) or YAML path.",
)
FORCE_HELP = "Replace the stage's judgements even with fewer rows (refused by default)."
JSON = click.option(
    "--json", "json_out", help="Write the result as JSON to this file ('-': stdout)."
)


def _server(root: Path, ls_url: str | None) -> Any:
    from emotions_data.annotation.server import connect

    return connect(root, ls_url)


@click.group()
def annotate() -> None:
    """Crowd annotation on Label Studio: server, allocate, push, pull, evaluate, escalate, finalize.

    \b
    Example:
      emotions-data annotate server start --root data
      emotions-data annotate allocate roster.csv --groups 3 --out data/groups.parquet
    """


annotate.add_command(server)


@annotate.command()
@click.option("--groups", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credentials CSV (mode 0600) [default: ROOT/labelstudio/credentials.csv].",
)
@click.option("--reset", is_flag=True, help="Give every annotator a new password.")
@PROTOCOL
@ROOT
@LS_URL
@JSON
def users(
    groups: Path,
    out: Path | None,
    reset: bool,
    protocol: str,
    root: Path,
    ls_url: str | None,
    json_out: str | None,
) -> None:
    """One Label Studio account per roster member, with a random password (embedded server).

    Writes annotator_id,email,password,login_url to a 0600 CSV for the lab manager; passwords are
    never printed. Re-runs keep passwords (--reset rotates them); annotators removed by an
    evaluation are deactivated and cannot log in.

    \b
    Example:
      emotions-data annotate users --root data --groups data/groups.parquet
    """
    from emotions_data.annotation.commands import users_command

    result = users_command(root, _server(root, ls_url), groups, protocol, out=out, reset=reset)
    click.echo(
        f"{result.credentials}: {len(result.created)} account(s) created, "
        f"{len(result.passwords_set)} password(s) set, {len(result.unchanged)} unchanged, "
        f"{len(result.deactivated)} deactivated; people log in at {result.login_url}"
    )
    emit_json(result.to_dict(), json_out)


@annotate.command()
@click.argument("roster", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--groups", "k", type=int, default=3, show_default=True, help="How many groups.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@PROTOCOL
@JSON
@pass_settings
def allocate(
    settings: Settings, roster: Path, k: int, out: Path, protocol: str, json_out: str | None
) -> None:
    """Balanced annotator groups from ROSTER (CSV/Parquet), exactly one leader each, seeded.

    ROSTER columns (annotation/roster.example.csv): annotator_id (required, unique), email,
    leader and expert (yes/no; experts form the expert group), experience_years, msceit_score,
    education, culture (balanced across groups); any other column is kept. The roster is
    checked against --protocol first (`annotate check`): groups too small for its judgements
    per item, too few leaders or a cross-check offset that wraps with K groups are refused.

    \b
    Example:
      emotions-data --seed 1 annotate allocate roster.csv --groups 3 --out data/groups.parquet
    """
    from emotions_data.annotation.commands import allocate_command

    result = allocate_command(roster, out, protocol, groups=k, seed=settings.seed)
    allocation, summary = result.allocation, result.summary
    sizes = ", ".join(f"{g}: {n}" for g, n in summary["groups"].items())
    click.echo(f"{out}: groups {sizes}; imbalance {summary['imbalance']}")
    if allocation.surplus_leaders:
        click.echo(
            f"leader candidates joining as members (one leader per group): "
            f"{', '.join(allocation.surplus_leaders)}",
            err=True,
        )
    emit_json(summary, json_out)


@annotate.command("check")
@click.option(
    "--groups",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Groups manifest to check (as allocated or as an evaluation left it).",
)
@click.option("--roster", type=click.Path(dir_okay=False, path_type=Path), help="Roster to check.")
@click.option(
    "--num-groups",
    "k",
    type=int,
    help="Groups the roster will be allocated into (default: the protocol's 'groups').",
)
@PROTOCOL
@JSON
def check_cmd(
    groups: Path | None, roster: Path | None, k: int | None, protocol: str, json_out: str | None
) -> None:
    """Check the protocol against the roster or groups before anything is pushed (push runs it).

    Refused (exit 1): a cross-check offset that sends items back to a group that already
    judged them, groups with fewer active annotators than the judgements per item, a group
    without exactly one leader, too few experts for the expert stage, malformed roster columns.

    \b
    Example:
      emotions-data annotate check --protocol lab.yaml --roster roster.csv --num-groups 2
      emotions-data annotate check --protocol lab.yaml --groups data/groups.parquet
    """
    from emotions_data.annotation.commands import check_command

    proto, report = check_command(protocol, groups=groups, roster=roster, n_groups=k)
    emit_json(report.to_dict(), json_out)
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for error in report.errors[1:]:
        click.echo(f"Problem: {error}", err=True)
    report.raise_errors()
    click.echo(
        f"protocol {proto.name!r} ({proto.source}): OK with {report.n_groups} group(s) of at "
        f"least {report.needed_size} annotator(s)"
    )


@annotate.command()
@click.option("--stage", required=True, help="Protocol stage to push.")
@click.option("--videos", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--groups", type=click.Path(dir_okay=False, path_type=Path), required=True)
@PROTOCOL
@ROOT
@LS_URL
@JSON
@pass_settings
def push(
    settings: Settings,
    stage: str,
    videos: Path,
    groups: Path,
    protocol: str,
    root: Path,
    ls_url: str | None,
    json_out: str | None,
) -> None:
    """Create or reuse the stage's projects (one per group) and import the tasks each group must do.

    Re-running after a crash creates no duplicate projects or tasks.

    \b
    Example:
      emotions-data annotate push --stage primary --videos data/videos.parquet --groups data/groups.parquet --root data
    """
    from emotions_data.annotation.commands import push_command

    result = push_command(
        root, _server(root, ls_url), protocol, stage, videos, groups, seed=settings.seed
    )
    if result.nothing_to_push:
        click.echo(f"{stage}: nothing to push (no item was routed to this stage)")
    for group, pid in result.projects.items():
        click.echo(
            f"{stage}/{group}: project {pid}, {result.created[group]} task(s) created, "
            f"{result.existing[group]} already there"
        )
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    emit_json(result.to_dict(), json_out)


@annotate.command()
@click.option("--stage", required=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Annotations manifest (created or updated).",
)
@click.option(
    "--groups",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Groups manifest: judgements by non-members are kept apart.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Cancelled, empty, multi-choice or unknown-label annotations are an error.",
)
@click.option(
    "--via",
    type=click.Choice(["auto", "api", "database"]),
    default="auto",
    show_default=True,
    help="database: read the embedded server's SQLite (fast); api: export snapshots (any server).",
)
@click.option("--force", is_flag=True, help=FORCE_HELP)
@PROTOCOL
@ROOT
@LS_URL
@JSON
def pull(
    stage: str,
    out: Path,
    groups: Path | None,
    strict: bool,
    via: str,
    force: bool,
    protocol: str,
    root: Path,
    ls_url: str | None,
    json_out: str | None,
) -> None:
    """Export the stage's projects and write its judgements into the annotations manifest.

    Pulling twice gives the same file.

    \b
    Example:
      emotions-data annotate pull --stage primary --out data/annotations.parquet --root data
    """
    from emotions_data.annotation.commands import pull_command

    result = pull_command(
        root,
        _server(root, ls_url),
        protocol,
        stage,
        out,
        groups=groups,
        strict=strict,
        via=via,
        force=force,
    )
    _report_pull(result)
    emit_json(result.to_dict(), json_out)


def _report_pull(result: Any) -> None:
    rep = result.report
    state = "written" if result.written else "unchanged"
    empty = " (nothing was routed to this stage)" if getattr(result, "empty", False) else ""
    click.echo(f"{result.out}: {result.rows} judgement(s) of stage {result.stage} ({state}){empty}")
    skipped = {
        "cancelled": rep.cancelled,
        "empty": rep.empty,
        "several choices": rep.several_choices,
        "unknown label": rep.unknown_label,
        "repeated": rep.repeated,
    }
    if any(skipped.values()):
        click.echo("skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items() if v), err=True)
    if result.outside:
        click.echo(
            f"{result.outside} judgement(s) by people outside the group kept apart in {result.outside_path}",
            err=True,
        )
    if getattr(result, "under_judged", None):
        from emotions_data.annotation.progress import describe_short

        click.echo(f"Warning: {describe_short(result.under_judged)}", err=True)


@annotate.command("status")
@click.option(
    "--groups",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Groups manifest: only active members can still judge (stuck tasks).",
)
@click.option("--stage", "stages", multiple=True, help="Only these stages (default: all pushed).")
@click.option(
    "--via",
    type=click.Choice(["auto", "api", "database"]),
    default="auto",
    show_default=True,
    help="How Label Studio is read (as for pull).",
)
@PROTOCOL
@ROOT
@LS_URL
@JSON
def status_cmd(
    groups: Path | None,
    stages: tuple[str, ...],
    via: str,
    protocol: str,
    root: Path,
    ls_url: str | None,
    json_out: str | None,
) -> None:
    """Progress per pushed stage, read from Label Studio: complete tasks, who has work left.

    Per stage: tasks with all their judgements / tasks, judgements missing; per group; per
    annotator: tasks done, tasks still open to them, median lead time; tasks below their
    required count, and the stuck ones (not enough people left in the group to finish them).

    \b
    Example:
      emotions-data annotate status --root data --groups data/groups.parquet
    """
    from emotions_data.annotation.progress import format_status
    from emotions_data.annotation.protocol import load_protocol
    from emotions_data.annotation.status import annotation_status
    from emotions_data.annotation.store import read_groups

    statuses = annotation_status(
        root,
        _server(root, ls_url),
        load_protocol(protocol),
        groups=read_groups(groups) if groups is not None else None,
        stages=stages,
        via=via,
    )
    if json_out != "-":
        click.echo(format_status(statuses))
    emit_json([s.to_dict() for s in statuses], json_out)


@annotate.command("import")
@click.argument("export", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stage", required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--users",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV: annotator_id + ls_user_id and/or email.",
)
@click.option("--group", "group_id", help="Group whose project the export comes from.")
@click.option("--taxonomy", default=None, help="Taxonomy name or YAML (default: emotions6).")
@click.option("--strict", is_flag=True, help="Any skipped annotation is an error.")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@JSON
def import_cmd(
    export: Path,
    stage: str,
    out: Path,
    users: Path | None,
    group_id: str | None,
    taxonomy: str | None,
    strict: bool,
    force: bool,
    json_out: str | None,
) -> None:
    """Judgements from a Label Studio JSON export made elsewhere, into the annotations manifest.

    \b
    Example:
      emotions-data annotate import project-3.json --stage primary --users users.csv --out data/annotations.parquet
    """
    from emotions_data.annotation.commands import import_command

    result = import_command(
        export,
        stage,
        out,
        taxonomy=taxonomy,
        users=users,
        group_id=group_id,
        strict=strict,
        force=force,
    )
    _report_pull(result)
    emit_json(result.to_dict(), json_out)


@annotate.command()
@click.option("--stage", required=True, help="An evaluate stage of the protocol.")
@click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--groups", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Updated groups manifest (default: overwrite --groups).",
)
@PROTOCOL
@JSON
def evaluate(
    stage: str,
    annotations: Path,
    groups: Path,
    out: Path | None,
    protocol: str,
    json_out: str | None,
) -> None:
    """Per-annotator consistency and per-group alpha; flagged annotators removed or moved.

    Prints one row per annotator: group, judgements, judgements compared with the
    leave-one-out consensus, agreement and Cohen's kappa against it, median lead time,
    flagged and the outcome (kept, removed, moved); then the per-group alpha.

    \b
    Example:
      emotions-data annotate evaluate --stage evaluate_a --annotations data/annotations.parquet --groups data/groups.parquet
    """
    from emotions_data.annotation.commands import evaluate_command

    result = evaluate_command(protocol, stage, annotations, groups, out)
    target = out or groups
    alphas = ", ".join(f"{g}: {a}" for g, a in result["group_alpha"].items())
    again = (
        " (already evaluated: recorded outcome, groups unchanged)"
        if result["already_evaluated"]
        else ""
    )
    from emotions_data.annotation.evaluate import format_annotator_table
    from emotions_data.annotation.store import read_groups

    click.echo(format_annotator_table(result["annotators"], read_groups(target)))
    click.echo(f"group alpha: {alphas}{again}")
    flagged, moved = ", ".join(result["flagged"]) or "none", ", ".join(result["moved"]) or "none"
    click.echo(f"flagged: {flagged}; moved: {moved}; groups -> {target}")
    emit_json(result, json_out)


@annotate.command()
@click.option(
    "--from", "from_stages", multiple=True, help="Source stage(s) (default: the protocol's)."
)
@click.option("--to", "to_stage", required=True, help="Stage that receives the items.")
@click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--groups", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--allow-incomplete",
    is_flag=True,
    help="Route even when source tasks still miss judgements (refused by default).",
)
@PROTOCOL
@ROOT
@JSON
def escalate(
    from_stages: tuple[str, ...],
    to_stage: str,
    annotations: Path,
    groups: Path | None,
    allow_incomplete: bool,
    protocol: str,
    root: Path,
    json_out: str | None,
) -> None:
    """Route items to the next stage by the protocol's rule (rotation, disputed, uncertain).

    A source stage whose pulled judgements leave tasks short of their required count is
    refused (exit 1) unless --allow-incomplete.

    \b
    Example:
      emotions-data annotate escalate --from primary --to cross_check_a --annotations data/annotations.parquet --groups data/groups.parquet --root data
    """
    from emotions_data.annotation.commands import escalate_command

    result = escalate_command(
        root,
        protocol,
        to_stage,
        annotations,
        groups,
        from_stages=from_stages,
        allow_incomplete=allow_incomplete,
    )
    info = result.to_dict()
    items = ", ".join(f"{g}: {n}" for g, n in info["items"].items()) or "none"
    note = " (already pushed; kept)" if result.kept else ""
    click.echo(f"{to_stage}: {info['total']} item(s) -> {items}{note}")
    emit_json(info, json_out)


@annotate.command()
@click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--groups",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Groups manifest (removed annotators do not count).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--method", type=click.Choice(["majority", "dawid-skene"]), help="Default: the protocol's."
)
@PROTOCOL
@JSON
@pass_settings
def finalize(
    settings: Settings,
    annotations: Path,
    groups: Path | None,
    out: Path,
    method: str | None,
    protocol: str,
    json_out: str | None,
) -> None:
    """One label per video; expert labels final (expert_changed); ties reported, never broken.

    \b
    Example:
      emotions-data annotate finalize --annotations data/annotations.parquet --groups data/groups.parquet --method dawid-skene --out data/labels.parquet
    """
    from emotions_data.annotation.commands import finalize_command

    result = finalize_command(
        protocol, annotations, out, groups_path=groups, method=method, seed=settings.seed
    )
    info = result.to_dict()
    click.echo(
        f"{out}: {info['labels']} label(s) {info['by_method']}, expert changed {info['expert_changed']}"
    )
    if result.unresolved:
        click.echo(
            f"{len(result.unresolved)} tied item(s) without an expert label left out: "
            f"{', '.join(result.unresolved[:10])}{' ...' if len(result.unresolved) > 10 else ''}",
            err=True,
        )
    emit_json({**info, "confusions": result.confusions}, json_out)


@annotate.command()
@click.option("--stage", required=True)
@click.option(
    "--roster",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Roster with sim_profile / sim_accuracy columns.",
)
@click.option("--groups", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV/Parquet: video_id, label (the true class).",
)
@click.option(
    "--bulk",
    is_flag=True,
    help="A project nobody labelled yet: re-import its tasks with the judgements inline "
    "(minutes instead of hours for tens of thousands of videos; task ids change).",
)
@PROTOCOL
@ROOT
@LS_URL
@JSON
@pass_settings
def simulate(
    settings: Settings,
    stage: str,
    roster: Path,
    groups: Path,
    truth: Path,
    bulk: bool,
    protocol: str,
    root: Path,
    ls_url: str | None,
    json_out: str | None,
) -> None:
    """A simulated crowd labels the stage's tasks through the real API, as distinct users.

    \b
    Example:
      emotions-data annotate simulate --stage primary --roster roster.csv --groups data/groups.parquet --truth truth.csv --root data
    """
    from emotions_data.annotation.commands import simulate_command
    from emotions_data.annotation.simulate import read_truth

    # the inputs are read before the server is reached: a bad file is told without a server
    true_labels = read_truth(truth)
    result = simulate_command(
        root,
        _server(root, ls_url),
        protocol,
        stage,
        groups,
        true_labels,
        roster,
        seed=settings.seed,
        bulk=bulk,
    )
    click.echo(f"{stage}: {result.created} annotation(s) created, {result.already} already there")
    emit_json(result.to_dict(), json_out)


@annotate.command("run")
@click.option("--videos", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--roster", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Simulate the crowd with these true labels.",
)
@click.option("--method", type=click.Choice(["majority", "dawid-skene"]))
@PROTOCOL
@ROOT
@LS_URL
@JSON
@pass_settings
def run_cmd(
    settings: Settings,
    videos: Path,
    roster: Path,
    truth: Path | None,
    method: str | None,
    protocol: str,
    root: Path,
    ls_url: str | None,
    json_out: str | None,
) -> None:
    """The whole protocol in order (allocate, stages, evaluations, expert, finalize).

    Without --truth it stops at the first stage still waiting for people; run it again later.

    \b
    Example:
      emotions-data annotate run --videos data/videos.parquet --roster roster.csv --truth truth.csv --root data
    """
    from emotions_data.annotation.runner import Simulation, run_protocol

    sim = Simulation.from_files(truth, roster, settings.seed) if truth is not None else None
    result = run_protocol(
        root,
        videos,
        roster,
        protocol,
        _server(root, ls_url),
        simulate=sim,
        seed=settings.seed,
        method=method,
    )
    for step in result.steps:
        click.echo(f"- {step['step']}")
    if result.waiting_for:
        click.echo(
            f"waiting for judgements of stage {result.waiting_for}; run again when they are in"
        )
    else:
        click.echo(f"labels: {result.labels_path} ({len(result.unresolved)} unresolved)")
    emit_json(
        {"steps": result.steps, "waiting_for": result.waiting_for, "unresolved": result.unresolved},
        json_out,
    )
