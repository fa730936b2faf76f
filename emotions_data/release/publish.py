"""``emotions-data release``: a folder Hugging Face ``datasets`` loads as Parquet.

Layout: ``data/<variant>/<split>.parquet``, ``README.md`` (dataset card, one ``configs`` entry
per variant), ``croissant.json`` and, with media, ``media/<video_id>.mp4``. Ids-only by
default: ids, URLs, platform, labels and the media's sha256, so the videos themselves are
re-downloaded by whoever uses the release (``emotions-data hydrate``).

Safety (README "Trust boundary and faults"): media are published only when they are regular
files inside the root (a link ``normalized/<id>.mp4 -> /etc/passwd`` is an error, never
followed). The release is built in a staging folder next to ``out`` (``.<name>.partial``,
seeded with hard links of an earlier release there, so unchanged media are not copied again)
and renamed into place at the end: ``out`` is always a complete release, old or new. A failed
run leaves ``out`` as it was and removes its staging folder; one killed outright leaves the
hidden staging folder, which the next run reuses. When ``out`` lies inside the root the run
holds the root's write lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emotions_data.release.card import ReleaseInfo, dataset_card, texts
from emotions_data.release.croissant import croissant
from emotions_data.release.facts import DatasetFacts, RootPaths, load_facts
from emotions_data.schema.atomic import atomic_path, atomic_write_text, sha256_file
from emotions_data.schema.errors import ConfigError, ManifestError
from emotions_data.schema.manifests import SPLITS
from emotions_data.schema.safety import (
    check_safe_name,
    inside_root,
    regular_file_inside,
    root_lock,
)
from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy

#: Columns of every data file, in order, with their Arrow types.
RELEASE_SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("platform", pa.string()),
        ("source_url", pa.string()),
        ("label", pa.string()),
        ("split", pa.string()),
        ("fold", pa.int32()),
        ("sha256", pa.string()),
        ("bytes", pa.int64()),
        ("duration_s", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("method", pa.string()),
        ("n_votes", pa.int32()),
        ("support", pa.float64()),
    ]
)
MEDIA_FIELDS = [pa.field("media_path", pa.string()), pa.field("media_sha256", pa.string())]


@dataclass
class ReleaseResult:
    out: Path
    files: dict[str, dict[str, str]]
    rows: dict[str, int]
    media_files: int


def _rows(facts: DatasetFacts) -> pd.DataFrame:
    """One row per labelled video with the release columns (split columns added per variant)."""
    labels = facts.labels[["video_id", "label", "method", "n_votes", "support"]]
    if facts.videos is None:
        raise ManifestError(["release needs the videos manifest (URLs and sha256)"])
    cols = [
        "video_id",
        "platform",
        "source_url",
        "sha256",
        "bytes",
        "duration_s",
        "width",
        "height",
    ]
    extra = [c for c in ("normalized_path", "media_path") if c in facts.videos.columns]
    frame = labels.merge(facts.videos[cols + extra], on="video_id", how="left")
    missing = frame.loc[frame["source_url"].isna(), "video_id"]
    if len(missing):
        raise ManifestError(
            [
                f"labelled video {missing.iloc[0]!r} is not in the videos manifest ({len(missing)} such)"
            ]
        )
    return frame


def _media(frame: pd.DataFrame, root: Path, out: Path) -> tuple[pd.DataFrame, int]:
    """Copy each video's normalised clip (else its original) to ``out/media``; resumable."""
    paths, digests = [], []
    copied = 0
    for row in frame.itertuples(index=False):
        src = None
        for candidate in (
            getattr(row, "normalized_path", None),
            f"normalized/{row.video_id}.mp4",
            getattr(row, "media_path", None),
        ):
            if isinstance(candidate, str) and os.path.lexists(root / candidate):
                # only a regular file inside the root is published: a symlink is an error
                src = regular_file_inside(root, candidate, what=f"media of {row.video_id!r}")
                break
        if src is None:
            raise ManifestError(
                [f"video {row.video_id!r}: no media file under {root} (normalized/ or media_path)"]
            )
        dst_rel = f"media/{row.video_id}{src.suffix or '.mp4'}"
        dst = inside_root(out, dst_rel, what="release media path")
        digest = sha256_file(src)
        if (
            not dst.exists()
            or dst.stat().st_size != src.stat().st_size
            or sha256_file(dst) != digest
        ):
            with atomic_path(dst, suffix=src.suffix) as tmp:
                shutil.copyfile(src, tmp)
            copied += 1
        paths.append(dst_rel)
        digests.append(digest)
    return frame.assign(media_path=paths, media_sha256=digests), copied


TAXONOMY_KEY = b"emotions_data.taxonomy"


def _write_parquet(frame: pd.DataFrame, schema: pa.Schema, path: Path, taxonomy: Taxonomy) -> None:
    # the taxonomy travels with the data, so hydrate can write manifests without the source root
    schema = schema.with_metadata({TAXONOMY_KEY: json.dumps(taxonomy.to_dict()).encode()})
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, write_page_checksum=True)


def _remove_stale(out: Path, files: dict[str, dict[str, str]], media: set[str]) -> None:
    """Delete what an earlier release into ``out`` wrote and this one does not hold.

    hydrate and ``datasets`` read every ``data/<variant>/<split>.parquet``, so a split or a
    variant that is gone would come back; an ids-only release must not ship old media.
    """
    keep = {rel for per_split in files.values() for rel in per_split.values()}
    for file in sorted(out.glob("data/*/*.parquet")):
        if file.relative_to(out).as_posix() not in keep:
            file.unlink()
    for folder in sorted(out.glob("data/*")):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if (out / "media").is_dir():
        for file in sorted((out / "media").iterdir()):
            if file.is_file() and f"media/{file.name}" not in media:
                file.unlink()


def build_release(
    root: str | Path,
    out: str | Path,
    *,
    with_media: bool = False,
    name: str | None = None,
    license: str = "other",
    homepage: str | None = None,
    version: str = "1.0.0",
    seed: int = 0,
    n_boot: int = 500,
    **paths: str | Path | None,
) -> ReleaseResult:
    """Write the release folder ``out`` from the manifests under ``root``.

    Built in a staging folder and renamed into place at the end (see the module doc).
    """
    root = Path(root)
    final = Path(out)
    if _within(root, final):
        raise ConfigError(f"--out {final} must not be the dataset root or a folder holding it")
    if final.exists() and not final.is_dir():
        raise ConfigError(f"--out {final} exists and is not a folder")
    lock = root_lock(root) if _within(final, root) else contextlib.nullcontext()
    with lock:
        facts = load_facts(RootPaths.of(root, **paths))  # bad manifests fail before any write
        staging = _staging_for(final)
        try:
            result = _build(facts, root, staging, with_media, name, license, homepage, version,
                            seed, n_boot)  # fmt: skip
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # no half-built folder is left behind
            raise
        _swap_in(staging, final)
    result.out = final
    return result


def _within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved)."""
    resolved, base = path.resolve(), folder.resolve()
    return resolved == base or base in resolved.parents


def _staging_for(out: Path) -> Path:
    """``.<name>.partial`` next to ``out``, holding hard links of what ``out`` holds now.

    A killed run's staging folder is reused (its media copies are kept). Links are never
    followed: only regular files of ``out`` are mirrored.
    """
    staging = out.parent / f".{out.name}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    if not out.is_dir():
        return staging
    for src in sorted(out.rglob("*")):
        dst = staging / src.relative_to(out)
        if src.is_symlink() or dst.exists():
            continue
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)  # every later write replaces a file, never edits one in place
            except OSError:
                shutil.copy2(src, dst)
    return staging


def _swap_in(staging: Path, out: Path) -> None:
    """Put the finished ``staging`` in place of ``out`` (two renames; the old one is removed)."""
    old = out.parent / f".{out.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def _build(
    facts: DatasetFacts,
    root: Path,
    out: Path,
    with_media: bool,
    name: str | None,
    license: str,
    homepage: str | None,
    version: str,
    seed: int,
    n_boot: int,
) -> ReleaseResult:
    info = ReleaseInfo(
        name=name or root.resolve().name,
        license=license,
        homepage=homepage,
        version=version,
        with_media=with_media,
    )
    base = _rows(facts)
    schema = RELEASE_SCHEMA
    media_files = 0
    if with_media:
        base, media_files = _media(base, root, out)
        schema = pa.schema([*RELEASE_SCHEMA, *MEDIA_FIELDS])
    files: dict[str, dict[str, str]] = {}
    rows: dict[str, int] = {}
    digests: dict[str, str] = {}
    for variant, split in facts.variants.items():
        frame = split[["video_id", "split", "fold"]].merge(base, on="video_id", how="left")
        lost = frame["source_url"].isna()
        if lost.any():
            raise ManifestError(
                [
                    f"variant {variant!r}: video {frame.loc[lost, 'video_id'].iloc[0]!r} has no "
                    "label or videos row"
                ]
            )
        files[variant] = {}
        check_safe_name(variant, "variant")
        for name_ in SPLITS:
            part = frame[frame["split"] == name_].sort_values("video_id")
            if part.empty:
                continue
            rel = f"data/{variant}/{name_}.parquet"
            _write_parquet(part, schema, inside_root(out, rel), facts.taxonomy)
            files[variant][name_] = rel
            digests[rel] = sha256_file(out / rel)
        rows[variant] = len(frame)
    _remove_stale(out, files, set(base["media_path"]) if with_media else set())
    agreement = facts.agreement(n_boot=n_boot, seed=seed)
    card = dataset_card(facts, info, agreement, files)
    atomic_write_text(out / "README.md", card)
    t = texts(facts, info, agreement)
    doc = croissant(
        info,
        t,
        files,
        digests,
        schema,
        description=t["motivation"],
        stages=facts.stages(),
        date_range=facts.date_range(),
        sources=facts.annotation_sources(),
    )
    atomic_write_text(out / "croissant.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return ReleaseResult(out=out, files=files, rows=rows, media_files=media_files)


#: The columns hydrate needs in every data file of a release.
HYDRATE_COLUMNS = ("video_id", "platform", "source_url", "label", "split", "fold", "sha256")


def _read_data_file(file: Path) -> pd.DataFrame:
    """One data file of a release (untrusted): readable, page checksums intact, columns there."""
    try:
        table = pq.read_table(file, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ManifestError([f"{file}: not a readable Parquet file ({first})"]) from None
    missing = [c for c in HYDRATE_COLUMNS if c not in table.column_names]
    if missing:
        raise ManifestError(
            [f"{file}: missing column(s) {', '.join(missing)}; a release data file has "
             f"{', '.join(RELEASE_SCHEMA.names)}"]
        )  # fmt: skip
    return table.to_pandas()


def read_release(release: str | Path) -> dict[str, pd.DataFrame]:
    """``{variant: rows of all its splits}`` of a release folder (pyarrow only).

    A release is untrusted: a truncated or damaged file, a missing column or a variant folder
    that is not a safe name is a one-line ``ManifestError``/``UnsafePathError``.
    """
    release = Path(release)
    data = release / "data"
    if not data.is_dir():
        raise ManifestError([f"{release}: not a release folder (no data/ directory)"])
    out: dict[str, pd.DataFrame] = {}
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        check_safe_name(folder.name, f"{release}: variant folder")
        parts = [_read_data_file(f) for f in sorted(folder.glob("*.parquet"))]
        if parts:
            out[folder.name] = pd.concat(parts, ignore_index=True)
    if not out:
        raise ManifestError([f"{release}: no data/<variant>/<split>.parquet files"])
    return out


def release_taxonomy(release: str | Path) -> Taxonomy:
    """The taxonomy stored in a release's data files (the default one if absent)."""
    for file in sorted(Path(release).glob("data/*/*.parquet")):
        try:
            meta = pq.read_schema(file).metadata or {}
        except (pa.ArrowException, OSError):
            continue  # read_release reports a damaged file
        if TAXONOMY_KEY in meta:
            return Taxonomy.from_dict(json.loads(meta[TAXONOMY_KEY]), source=str(file))
    return load_taxonomy()


def release_summary(result: ReleaseResult) -> dict[str, Any]:
    return {
        "out": str(result.out),
        "variants": result.rows,
        "files": result.files,
        "media_files": result.media_files,
    }
