"""``emotions-data agreement``: inter-annotator agreement of an annotations manifest."""

from __future__ import annotations

from pathlib import Path

import click

from emotions_data.cli.common import Settings, emit_json, pass_settings


@click.command()
@click.argument("annotations", type=click.Path(path_type=Path))
@click.option(
    "--stage",
    "stages",
    multiple=True,
    help="Only these stages (repeatable; default: all stages pooled).",
)
@click.option(
    "--by",
    default="",
    help="Break down by any of class,annotator,group,stage (comma separated).",
)
@click.option(
    "--groups",
    type=click.Path(path_type=Path),
    help="Groups manifest (annotator_id -> group_id) for --by group; default: the group_id column.",
)
@click.option(
    "--include-removed",
    is_flag=True,
    help="With --groups: keep annotators an evaluation removed (default: the final crowd).",
)
@click.option(
    "--bootstrap",
    "n_boot",
    type=int,
    default=0,
    show_default=True,
    help="Item resamples for confidence intervals (0: none; seeded by the root --seed).",
)
@click.option("--ci", "level", type=float, default=0.95, show_default=True, help="Interval level.")
@click.option(
    "--min-alpha",
    type=float,
    help="Quality gate: exit with code 3 when Krippendorff's alpha is below this value.",
)
@click.option(
    "--taxonomy", help="Taxonomy name or YAML (default: the manifest's own; CSV: emotions6)."
)
@click.option("--json", "json_target", help="Write the report as JSON to PATH ('-' for stdout).")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    help="Write report.md and PNG plots into this folder.",
)
@pass_settings
def agreement(
    settings: Settings,
    annotations: Path,
    stages: tuple[str, ...],
    by: str,
    groups: Path | None,
    include_removed: bool,
    n_boot: int,
    level: float,
    min_alpha: float | None,
    taxonomy: str | None,
    json_target: str | None,
    report_dir: Path | None,
) -> None:
    """Krippendorff's alpha, Fleiss' kappa, pairwise agreement and Gwet's AC1 of ANNOTATIONS.

    ANNOTATIONS is an annotations manifest (Parquet) or a CSV with video_id, annotator_id,
    label (and optionally stage, group_id). Items judged once are left out and counted.
    With --groups the report is of the final crowd: annotators an evaluation removed are left
    out (--include-removed keeps them); the first line says which.
    Exit codes: 0 done, 1 error, 2 usage error, 3 alpha below --min-alpha.

    \b
    Example:
      emotions-data --seed 7 agreement data/annotations.parquet --by class,annotator,stage \\
          --bootstrap 1000 --min-alpha 0.667 --json agreement.json --report reports/agreement
    """
    from emotions_data.agreement.command import agreement_command
    from emotions_data.agreement.render import format_text
    from emotions_data.agreement.report import enforce_min_alpha

    run = agreement_command(
        annotations,
        stages=stages,
        by=by,
        groups=groups,
        include_removed=include_removed,
        n_boot=n_boot,
        level=level,
        seed=settings.seed,
        taxonomy=taxonomy,
        report_dir=report_dir,
    )
    report = run.report
    if json_target != "-":
        click.echo(format_text(report))
    emit_json(report.to_dict(), json_target)
    if report_dir is not None:
        click.echo(f"wrote {len(run.written)} files to {report_dir}", err=json_target == "-")
    enforce_min_alpha(report, min_alpha)
