"""``emotions-data import``: labelled videos already on disk as a dataset root."""

from __future__ import annotations

from pathlib import Path

import click

from emotions_data.cli.common import emit_json


@click.command(name="import")
@click.argument("videos_dir", type=click.Path(path_type=Path))
@click.option(
    "--labels",
    "labels_csv",
    required=True,
    type=click.Path(path_type=Path),
    help="CSV: file or id, label, optional split, optional uploader.",
)
@click.option(
    "--out", "root", required=True, type=click.Path(path_type=Path), help="Dataset root to write."
)
@click.option("--taxonomy", help="Taxonomy name or YAML the labels are checked against.")
@click.option("--json", "json_out", help="Also write the summary as JSON here ('-': stdout).")
def import_command(
    videos_dir: Path, labels_csv: Path, root: Path, taxonomy: str | None, json_out: str | None
) -> None:
    """Import labelled video files (the eMotions release, or a lab's own clips) into ROOT.

    Writes ROOT/media/local/, ROOT/videos.parquet, ROOT/labels.parquet and, when the CSV has
    a split column, ROOT/split.parquet, so `prepare` and then `baseline train` run on them
    directly. Labels are checked against the taxonomy; file names and ids are untrusted (files
    must lie inside VIDEOS_DIR, ids become safe names). Files are hard-linked when ROOT is on
    the same file system, else copied. Re-running keeps unchanged videos' prepared outputs.

    \b
    Example:
      emotions-data import clips/ --labels clips/labels.csv --out data
      emotions-data prepare --root data
      emotions-data baseline train --variant data/split.parquet --root data --out runs/lab
    """
    from emotions_data.ingest.local_import import import_videos

    summary = import_videos(videos_dir, labels_csv, root, taxonomy=taxonomy)
    click.echo(
        f"imported {summary.videos} videos into {summary.root} ({summary.linked} linked, "
        f"{summary.copied} copied, {summary.unchanged} unchanged); labels {summary.by_label}"
        + (f"; splits {summary.by_split}" if summary.by_split else "; no split column"),
        err=json_out == "-",
    )
    emit_json(summary.to_dict(), json_out)
