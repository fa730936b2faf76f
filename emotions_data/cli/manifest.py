"""``emotions-data manifest validate|show|docs``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from emotions_data.schema.errors import ManifestError


@click.group()
def manifest() -> None:
    """Validate and inspect manifests.

    \b
    Example:
      emotions-data manifest validate data/*.parquet
    """


@manifest.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["videos", "annotations", "labels", "split", "groups"]),
    help="Expected kind.",
)
@click.option(
    "--taxonomy", help="Taxonomy name or YAML to check labels against (default: the file's own)."
)
def validate(files: tuple[Path, ...], kind: str | None, taxonomy: str | None) -> None:
    """Check FILES against the manifest contract; one line per problem, exit 1 if any.

    \b
    Example:
      emotions-data manifest validate data/videos.parquet data/labels.parquet
    """
    from emotions_data.schema.io import read_manifest

    failed = False
    for path in files:
        try:
            m = read_manifest(path, kind, taxonomy=taxonomy)
        except ManifestError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(f"Error: {problem}", err=True)
        else:
            click.echo(f"ok: {path} ({m.kind.name}, {len(m.df)} rows)")
    if failed:
        raise SystemExit(1)


@manifest.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--rows", default=5, show_default=True, help="How many first rows to show.")
def show(file: Path, rows: int) -> None:
    """Print a manifest's kind, schema version, rows, metadata, parents and first rows.

    \b
    Example:
      emotions-data manifest show data/labels.parquet --rows 10
    """
    import pandas as pd

    from emotions_data.schema.io import read_manifest

    m = read_manifest(file)
    meta = m.meta
    click.echo(f"file:           {file}")
    click.echo(f"kind:           {meta.kind} (schema_version {meta.schema_version})")
    click.echo(f"rows:           {len(m.df)}")
    click.echo(f"created_by:     {meta.created_by}")
    click.echo(f"created_at:     {meta.created_at}")
    click.echo(f"params:         {json.dumps(meta.params, sort_keys=True)}")
    if meta.taxonomy:
        click.echo(
            f"taxonomy:       {meta.taxonomy.get('name')} ({', '.join(meta.taxonomy.get('classes', []))})"
        )
    for key, value in sorted(meta.extra.items()):
        click.echo(f"{key + ':':<15} {json.dumps(value, sort_keys=True)}")
    click.echo("parents:" + ("" if meta.parents else "        none"))
    for parent in meta.parents:
        click.echo(f"  {parent.get('path')}  sha256={str(parent.get('sha256'))[:16]}...")
    with pd.option_context("display.width", 160, "display.max_columns", 12):
        click.echo(m.df.head(rows).to_string(index=False))


@manifest.command()
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("manifests"), show_default=True
)
def docs(out: Path) -> None:
    """Regenerate SCHEMA.md and the tiny example manifests of each kind in OUT.

    \b
    Example:
      emotions-data manifest docs --out manifests
    """
    from emotions_data.schema.docs import write_docs

    for path in write_docs(out):
        click.echo(f"wrote {path}")
