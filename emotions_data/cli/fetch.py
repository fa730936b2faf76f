"""``emotions-data fetch``: download a URL list with yt-dlp into a dataset root."""

from __future__ import annotations

from pathlib import Path

import click

from emotions_data.cli.common import emit_json, executor_options


def summary_table(by_status: dict[str, int], by_error: dict[str, int]) -> str:
    """A small two-part table: videos by status, then failures by error kind."""
    lines = ["status        videos"]
    lines += [f"{name:<13} {count:>6}" for name, count in by_status.items()]
    if by_error:
        lines += ["error kind    videos"]
        lines += [f"{name:<13} {count:>6}" for name, count in by_error.items()]
    return "\n".join(lines)


@click.command()
@click.argument("urls", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Dataset root: videos.parquet and media/ go here.",
)
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--profile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Per-platform YAML: cookies file, pacing, user agent, proxy, concurrency.",
)
@click.option("--retry-failed", is_flag=True, help="Try the URLs that failed before again.")
@click.option("--allow-file-urls", is_flag=True, help="Also accept file: URLs (local tests).")
@executor_options
def fetch(
    urls: Path,
    root: Path,
    workers: int,
    profile: Path | None,
    retry_failed: bool,
    allow_file_urls: bool,
    executor: str,
    ray_address: str | None,
    no_progress: bool,
    json_out: str | None,
) -> None:
    """Download the videos of URLS (CSV/Parquet with a `url` column, or TXT, one URL a line).

    Each URL gives one mp4 with video and audio at ROOT/media/PLATFORM/VIDEO_ID.mp4 and
    one row of ROOT/videos.parquet, with an error kind when it fails (unavailable, private,
    geo_blocked, login_required, rate_limited, network, unsupported_url, bad_media, other).
    Re-running skips what is done; --retry-failed tries the failures again. Other input
    columns (platform, keyword, ...) are carried into the manifest.

    \b
    Example:
      emotions-data fetch urls.csv --out data --workers 4 --profile configs/profiles/example.yaml
    """
    from emotions_data.ingest.fetch import fetch as run_fetch

    summary = run_fetch(
        urls,
        root,
        workers=workers,
        profile=profile,
        retry_failed=retry_failed,
        allow_file_urls=allow_file_urls,
        progress=not no_progress,
        executor=executor,
        ray_address=ray_address,
    )
    adopted = f"adopted {summary.adopted} finished by a killed run, " if summary.adopted else ""
    click.echo(
        f"fetched {summary.downloaded} new, skipped {summary.skipped} done, {adopted}"
        f"{summary.total} URLs in {summary.elapsed_s:.1f} s -> {summary.manifest}"
    )
    click.echo(summary_table(summary.by_status, summary.by_error))
    emit_json(summary.to_dict(), json_out)
