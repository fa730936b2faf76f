"""``emotions-data split`` and ``emotions-data build-variants``."""

from __future__ import annotations

from pathlib import Path

import click

from emotions_data.cli.common import Settings, emit_json, pass_settings


def _default(root: Path | None, given: Path | None, name: str, *, must_exist: bool) -> Path | None:
    if given is not None:
        return given
    if root is None:
        return None
    path = root / name
    return path if path.exists() or not must_exist else None


@click.command()
@click.argument("labels", required=False, type=click.Path(path_type=Path))
@click.option(
    "--root", type=click.Path(path_type=Path), help="Dataset root (default paths under it)."
)
@click.option(
    "--videos",
    type=click.Path(path_type=Path),
    help="Videos manifest (platform, uploader_id, dup_of).",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Split manifest to write [ROOT/split.parquet]."
)
@click.option("--ratios", default="0.7,0.1,0.2", show_default=True, help="train,val,test shares.")
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    help="K cross-validation folds (test held out, fold 0 = val).",
)
@click.option(
    "--json", "json_out", help="Write the ratio report as JSON to this file ('-' for stdout)."
)
@pass_settings
def split(
    settings: Settings,
    labels: Path | None,
    root: Path | None,
    videos: Path | None,
    out: Path | None,
    ratios: str,
    folds: int | None,
    json_out: str | None,
) -> None:
    """Split LABELS into train/val/test, stratified by label and platform, leakage-free.

    Videos of one uploader and members of one near-duplicate cluster (dup_of) always stay in
    one split (and one fold). Prints the class x split table and how far the ratios moved.

    \b
    Example:
      emotions-data --seed 7 split data/labels.parquet --videos data/videos.parquet \\
          --out data/split.parquet --ratios 0.7,0.1,0.2
    """
    from emotions_data.variants import parse_ratios, split_dataset

    labels = _default(root, labels, "labels.parquet", must_exist=False)
    out = _default(root, out, "split.parquet", must_exist=False)
    if labels is None or out is None:
        raise click.UsageError("give LABELS and --out, or --root")
    videos = _default(root, videos, "videos.parquet", must_exist=True)
    result = split_dataset(
        labels,
        out,
        videos_path=videos,
        ratios=parse_ratios(ratios),
        folds=folds,
        seed=settings.seed,
    )
    if json_out != "-":
        click.echo(result.table().to_string())
        req, got = result.requested, result.achieved
        moved = ", ".join(f"{s} {req[s]:.3f}->{got[s]:.3f}" for s in req)
        click.echo(
            f"{len(result.frame)} videos in {result.n_groups} leakage groups (largest "
            f"{result.largest_group}); ratios {moved}; moved by at most "
            f"{result.max_shift * 100:.1f} points overall, {result.max_class_shift * 100:.1f} within a class"
        )
        if folds:
            click.echo(f"fold sizes: {result.fold_sizes}")
        for note in result.notes:
            click.echo(f"note: {note}")
        click.echo(f"wrote {out}")
    emit_json(result.summary(), json_out)


@click.command("build-variants")
@click.option(
    "--root", type=click.Path(path_type=Path), help="Dataset root (default paths under it)."
)
@click.option(
    "--labels", type=click.Path(path_type=Path), help="Labels manifest [ROOT/labels.parquet]."
)
@click.option(
    "--videos", type=click.Path(path_type=Path), help="Videos manifest [ROOT/videos.parquet]."
)
@click.option(
    "--split",
    "split_path",
    type=click.Path(path_type=Path),
    help="Official split [ROOT/split.parquet if present; else made here].",
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Folder for VARIANT.parquet [ROOT/variants]."
)
@click.option(
    "--variants",
    "variants_path",
    type=click.Path(path_type=Path),
    help="Variant definitions YAML [annotation/variants.yaml].",
)
@click.option("--only", multiple=True, help="Build only this variant (repeatable).")
@click.option(
    "--allow-short",
    is_flag=True,
    help="Write a test-oriented variant whose test set misses an asked test_per_class "
    "(default: exit 3 naming the classes and the largest feasible count).",
)
@pass_settings
def build_variants(
    settings: Settings,
    root: Path | None,
    labels: Path | None,
    videos: Path | None,
    split_path: Path | None,
    out: Path | None,
    variants_path: Path | None,
    only: tuple[str, ...],
    allow_short: bool,
) -> None:
    """Build the dataset variants of a YAML (full, balanced, test-oriented, ...) as split manifests.

    Same inputs and seed give identical tables; each file's metadata holds the variant's name,
    definition, seed and the sha256 of its inputs. A test-oriented test set sized by
    test_share that whole leakage groups cannot fill is the largest balanced one they can
    (a note says so); an asked test_per_class that cannot be met exits 3, naming the largest
    feasible count. Exit codes: 0 done, 1 error, 2 usage error, 3 a test target not met.

    \b
    Example:
      emotions-data --seed 7 build-variants --labels data/labels.parquet \\
          --videos data/videos.parquet --out data/variants --variants annotation/variants.yaml
    """
    from emotions_data.variants import build_variants as build

    labels = _default(root, labels, "labels.parquet", must_exist=False)
    out = _default(root, out, "variants", must_exist=False)
    if labels is None or out is None:
        raise click.UsageError("give --labels and --out, or --root")
    videos = _default(root, videos, "videos.parquet", must_exist=True)
    split_path = _default(root, split_path, "split.parquet", must_exist=True)
    results = build(
        labels,
        out,
        videos_path=videos,
        variants_path=variants_path,
        split_path=split_path,
        seed=settings.seed,
        only=list(only) or None,
        allow_short=allow_short,
    )
    for result in results:
        counts = result.frame["split"].value_counts()
        sizes = ", ".join(f"{s} {int(counts.get(s, 0))}" for s in ("train", "val", "test"))
        click.echo(f"{result.name}: {len(result.frame)} videos ({sizes}) -> {result.path}")
        for note in result.notes:
            click.echo(f"  note: {note}")
