"""``emotions-data stats``, ``emotions-data release`` and ``emotions-data hydrate``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from emotions_data.cli.common import Settings, emit_json, pass_settings

_ROOT = click.Path(file_okay=False, path_type=Path)
F = TypeVar("F", bound=Callable[..., Any])


def _manifest_options(func: F) -> F:
    """Explicit manifest paths; each defaults to the shared layout under --root."""
    for name, default in reversed(
        (
            ("videos", "videos.parquet"),
            ("labels", "labels.parquet"),
            ("annotations", "annotations.parquet"),
            ("groups", "groups.parquet"),
            ("split", "split.parquet"),
            ("variants", "variants/"),
        )
    ):
        func = click.option(
            f"--{name}",
            type=click.Path(path_type=Path),
            help=f"[ROOT/{default}]",
        )(func)
    return func


@click.command()
@click.option("--root", type=_ROOT, required=True, help="Dataset root.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Report folder.")
@click.option("--bootstrap", default=500, show_default=True, help="Bootstrap samples for CIs.")
@_manifest_options
@pass_settings
def stats(
    settings: Settings, /, root: Path, out: Path, bootstrap: int, **paths: Path | None
) -> None:
    """PNG figures and a markdown report: classes per split and variant, platforms, durations,
    resolution/orientation, agreement per stage with CIs, and the funnel from URLs to labels.

    \b
    Example:
      emotions-data stats --root data --out data/stats
    """
    from emotions_data.release.stats import write_stats

    result = write_stats(root, out, seed=settings.seed, n_boot=bootstrap, **paths)
    click.echo(f"wrote {result.report} and {len(result.figures)} figure(s) in {out}")


@click.command()
@click.option("--root", type=_ROOT, required=True, help="Dataset root.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Release folder.")
@click.option(
    "--ids-only/--with-media",
    default=True,
    show_default=True,
    help="Ids, URLs, labels and sha256 only, or with the normalised media.",
)
@click.option("--name", help="Dataset name [the root folder's name].")
@click.option(
    "--license",
    "license_",
    default="other",
    show_default=True,
    help="Licence of the labels and metadata, written as given (e.g. cc-by-4.0).",
)
@click.option("--homepage", help="Homepage URL for the card and Croissant.")
@click.option("--version", "version_", default="1.0.0", show_default=True)
@click.option("--bootstrap", default=500, show_default=True, help="Bootstrap samples for CIs.")
@click.option("--json", "json_out", help="Write a summary as JSON ('-' for stdout).")
@_manifest_options
@pass_settings
def release(
    settings: Settings,
    /,
    root: Path,
    out: Path,
    ids_only: bool,
    name: str | None,
    license_: str,
    homepage: str | None,
    version_: str,
    bootstrap: int,
    json_out: str | None,
    **paths: Path | None,
) -> None:
    """Write a release folder: data/VARIANT/SPLIT.parquet (Hugging Face datasets loads it
    as Parquet), a README.md dataset card and croissant.json, filled from the manifests.

    \b
    Example:
      emotions-data release --root data --out release --ids-only
    """
    from emotions_data.release.publish import build_release, release_summary

    result = build_release(
        root,
        out,
        with_media=not ids_only,
        name=name,
        license=license_,
        homepage=homepage,
        version=version_,
        seed=settings.seed,
        n_boot=bootstrap,
        **paths,
    )
    if json_out != "-":
        for variant, n in result.rows.items():
            click.echo(f"{variant}: {n} videos in {', '.join(result.files[variant])}")
        media = f", {result.media_files} media file(s) copied" if not ids_only else ""
        click.echo(f"wrote {out}/README.md, croissant.json and data/{media}")
    emit_json(release_summary(result), json_out)


@click.command()
@click.argument("release_dir", metavar="RELEASE", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="New dataset root.")
@click.option("--workers", default=4, show_default=True, help="Parallel downloads.")
@click.option("--profile", type=click.Path(path_type=Path), help="Per-platform fetch profile YAML.")
@click.option("--retry-failed", is_flag=True, help="Try dead links of an earlier run again.")
@click.option("--allow-file-urls", is_flag=True, help="Also fetch file: URLs.")
@click.option("--json", "json_out", help="Write the availability report as JSON ('-' for stdout).")
def hydrate(
    release_dir: Path,
    out: Path,
    workers: int,
    profile: Path | None,
    retry_failed: bool,
    allow_file_urls: bool,
    json_out: str | None,
) -> None:
    """Re-download a release's videos through fetch, check their sha256, and write an
    availability report (per platform, class, split, variant), missing.csv and the variants
    restricted to what is still available.

    \b
    Example:
      emotions-data hydrate release --out data2 --workers 8
    """
    from emotions_data.release.hydrate import hydrate as run

    result = run(
        release_dir,
        out,
        workers=workers,
        profile=profile,
        retry_failed=retry_failed,
        allow_file_urls=allow_file_urls,
        progress=json_out != "-",
    )
    report = result.availability
    if json_out != "-":
        click.echo(
            f"{report['available']}/{report['videos']} videos available "
            f"({100 * report['share']:.1f} %), {report['dead']} dead, {report['changed']} changed"
        )
        for variant, r in report["per_variant"].items():
            state = "complete" if r["complete"] else f"{100 * r['share']:.1f} % available"
            click.echo(f"  {variant}: {state}")
        click.echo(f"wrote {out}/availability.md, availability.json, missing.csv, variants/")
    emit_json(report, json_out)
