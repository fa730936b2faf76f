"""``emotions-data prepare``: probe, filter, deduplicate, normalise and cache a dataset root."""

from __future__ import annotations

import os
from pathlib import Path

import click

from emotions_data.cli.common import emit_json, executor_options
from emotions_data.cli.fetch import summary_table


@click.command()
@click.option(
    "--root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dataset root made by `emotions-data fetch`.",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML settings (filters, normalisation, cache, near-duplicate thresholds).",
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--verify",
    is_flag=True,
    help="Re-hash every done output against its completion record (slow), instead of trusting "
    "files whose size and times are unchanged.",
)
@executor_options
def prepare(
    root: Path,
    config: Path | None,
    workers: int,
    verify: bool,
    executor: str,
    ray_address: str | None,
    no_progress: bool,
    json_out: str | None,
) -> None:
    """Probe every fetched video, apply the filters, mark exact and near duplicates, and write
    the normalised mp4, the 16 kHz WAV and the training cache, from one decode per video.

    Updates ROOT/videos.parquet in place; outputs go to ROOT/normalized, ROOT/audio and
    ROOT/cache. Resumable; a second run changes nothing.

    \b
    Example:
      emotions-data prepare --root data --config configs/prepare.yaml --workers 2
    """
    # One BLAS thread per process, set before numpy loads: the pool's workers are the
    # parallelism. Otherwise OpenBLAS starts a thread pool in this driver and again in every
    # forked worker, and each new thread spins about 0.1 s of CPU before it sleeps (measured:
    # 0.3 s of CPU in a 12-video run with 2 workers). A user's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from emotions_data.ingest.prepare import prepare as run_prepare

    summary = run_prepare(
        root,
        config=config,
        workers=workers,
        progress=not no_progress,
        executor=executor,
        ray_address=ray_address,
        verify=verify,
    )
    click.echo(
        f"prepared {summary.processed}, already done {summary.skipped}, "
        f"duplicates {summary.exact_duplicates} exact + {summary.near_duplicates} near, "
        f"in {summary.elapsed_s:.1f} s -> {summary.manifest}"
        + ("" if summary.changed else " (unchanged)")
    )
    click.echo(summary_table(summary.by_status, summary.by_error))
    emit_json(summary.to_dict(), json_out)
