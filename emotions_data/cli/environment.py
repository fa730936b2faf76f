"""``emotions-data setup`` and ``emotions-data doctor``: what the package cannot pip-install."""

from __future__ import annotations

from pathlib import Path

import click

from emotions_data.cli.common import emit_json


@click.command()
@click.option(
    "--python",
    "python",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Interpreter that makes the Label Studio venv [this one].",
)
def setup(python: Path | None) -> None:
    """Install the Label Studio server in its own venv with a migrated data template under
    $EMOTIONS_DATA_CACHE (default ~/.cache/emotions-data/labelstudio/), and say how to get
    ffmpeg when it is missing. Minutes the first time; seconds when nothing changed.

    \b
    Example:
      emotions-data setup
      EMOTIONS_DATA_CACHE=/scratch/ed-cache emotions-data setup --python python3.11
    """
    from emotions_data.annotation.server_setup import install_label_studio
    from emotions_data.environment import ffmpeg_checks

    result = install_label_studio(python=python, progress=lambda m: click.echo(m, err=True))
    state = "installed" if result.installed else "already installed"
    click.echo(f"Label Studio {state}: {result.current} -> {result.home}")
    for check in ffmpeg_checks():
        if not check.ok:
            click.echo(f"{check.name} is missing ({check.detail}); install it with: {check.fix}")


@click.command()
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Dataset root whose disk is checked.",
)
@click.option(
    "--min-free-gb",
    type=float,
    default=1.0,
    show_default=True,
    help="Less free space (GiB) under the root counts as missing.",
)
@click.option("--json", "json_out", help="Also write the checks as JSON ('-': stdout).")
def doctor(root: Path, min_free_gb: float, json_out: str | None) -> None:
    """Check ffmpeg/ffprobe, the Label Studio install, torch (with CUDA or not) and the free
    disk under the root; print the command that fixes each missing piece. Exit 1 when something
    needed is missing (no CUDA is only a note).

    \b
    Example:
      emotions-data doctor --root data
    """
    from emotions_data.environment import run_checks

    checks = run_checks(root, min_free_gib=min_free_gb)
    if json_out != "-":
        for check in checks:
            status = "ok" if check.ok else "MISSING" if check.needed else "note"
            click.echo(f"{status:8} {check.name:13} {check.detail}")
            if not check.ok and check.fix:
                click.echo(f"{'':8} {'':13} fix: {check.fix}")
    emit_json([c.to_dict() for c in checks], json_out)
    missing = [c.name for c in checks if c.needed and not c.ok]
    if missing:
        raise click.ClickException(f"missing: {', '.join(missing)} (the fix is printed above)")
