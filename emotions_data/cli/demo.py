"""``emotions-data demo``."""

from __future__ import annotations

from pathlib import Path

import click

from emotions_data.cli.common import Settings, emit_json, pass_settings


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder for everything the demo makes (re-use it to resume).",
)
@click.option(
    "--workers", type=int, default=2, show_default=True, help="Parallel fetch/prepare workers."
)
@click.option("--no-progress", is_flag=True, help="No progress bars (log lines only).")
@click.option("--json", "json_out", help="Write the summary as JSON to PATH (- for stdout).")
@pass_settings
def demo(
    settings: Settings, out: Path, workers: int, no_progress: bool, json_out: str | None
) -> None:
    """Run the whole chain on generated videos, on this machine, with real tools.

    Generates ~60 short clips served on 127.0.0.1, then fetch, prepare, the multi-stage
    annotation protocol on a local Label Studio with a simulated crowd, agreement, split and
    variants, the AV-CPNet baseline (tiny, CPU), stats, release and hydrate. A second run into
    the same folder resumes.

    \b
    Example:
      emotions-data --seed 0 demo --out demo-out
    """
    from emotions_data.demo import run_demo

    result = run_demo(
        out, seed=settings.seed, workers=workers, progress=not no_progress, echo=click.echo
    )
    emit_json(result.to_dict(), json_out)
