"""``import``: labelled videos a lab already has (the eMotions release, or its own clips with a
labels CSV) as a dataset root that ``prepare`` and ``baseline train`` run on directly.

The CSV has a ``file`` column (a path relative to the videos folder) or an ``id`` column (the
file is ``<id>.<ext>`` in the folder), a ``label`` column, and optionally ``split``
(train/val/test) and ``uploader`` (kept as ``uploader_id``, so ``split`` keeps an uploader's
videos together). Everything in it is untrusted: a file must be a regular file inside the
videos folder (no ``..``, no symlink out), and ids become safe names before they name a path.
Writes ``ROOT/media/local/<video_id><ext>`` (hard-linked when the file system allows, else
copied), ``ROOT/videos.parquet``, ``ROOT/labels.parquet`` and, with splits,
``ROOT/split.parquet``. A re-run keeps the rows (and prepare's work) of unchanged files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.schema.atomic import atomic_path, sha256_file
from emotions_data.schema.errors import ConfigError, ManifestError
from emotions_data.schema.io import read_manifest, read_table_file, write_manifest
from emotions_data.schema.manifests import SPLITS
from emotions_data.schema.safety import (
    UnsafePathError,
    check_safe_name,
    inside_root,
    is_safe_name,
    regular_file_inside,
    root_lock,
)
from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy

PLATFORM = "local"
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".flv", ".3gp")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class ImportSummary:
    root: Path
    videos: int
    linked: int
    copied: int
    unchanged: int
    by_label: dict[str, int] = field(default_factory=dict)
    by_split: dict[str, int] = field(default_factory=dict)
    manifests: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "videos": self.videos,
            "linked": self.linked,
            "copied": self.copied,
            "unchanged": self.unchanged,
            "by_label": self.by_label,
            "by_split": self.by_split,
            "manifests": self.manifests,
        }


def safe_video_id(raw: str) -> str:
    """``raw`` if it is already a safe name, else its safe characters plus a short hash of it
    (so two ids that differ only in unsafe characters stay distinct)."""
    raw = raw.strip()
    if is_safe_name(raw):
        return raw
    base = _UNSAFE.sub("_", raw).strip("_.-")[:100] or "video"
    return check_safe_name(
        f"{base}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}", "video id made from"
    )


def _find_by_id(videos_dir: Path, raw_id: str, row: int) -> Path:
    matches = [
        videos_dir / f"{raw_id}{suffix}"
        for suffix in VIDEO_SUFFIXES
        if (videos_dir / f"{raw_id}{suffix}").exists()
    ]
    if len(matches) != 1:
        found = "none" if not matches else ", ".join(m.name for m in matches)
        raise ConfigError(
            f"row {row}: id {raw_id!r}: expected one file {raw_id}.<{'|'.join(s[1:] for s in VIDEO_SUFFIXES)}> "
            f"in {videos_dir}, found {found}"
        )
    return matches[0]


def _source(videos_dir: Path, row: int, file: str | None, raw_id: str | None) -> Path:
    """The row's video file, checked to be a regular file inside ``videos_dir``."""
    if file:
        try:
            inside = inside_root(videos_dir, file, what=f"row {row}: file")
        except UnsafePathError as exc:
            raise UnsafePathError(f"{exc} (the videos folder)") from None
    else:
        assert raw_id is not None
        if "/" in raw_id or "\\" in raw_id or raw_id in (".", ".."):
            raise UnsafePathError(f"row {row}: id {raw_id!r} must not contain a path")
        inside = _find_by_id(videos_dir, raw_id, row)
    if not inside.exists():
        raise ConfigError(f"row {row}: no such file {file or inside.name!r} in {videos_dir}")
    return regular_file_inside(videos_dir, inside, what=f"row {row}: file")


def read_labels_csv(path: str | Path, taxonomy: Taxonomy) -> pd.DataFrame:
    """The CSV's rows with clean ``file``/``id``, ``label``, ``split``, ``uploader`` columns;
    every problem (unknown label or split, duplicate, missing column) in one ``ManifestError``."""
    frame = read_table_file(path)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "label" not in frame.columns or not {"file", "id"} & set(frame.columns):
        raise ConfigError(
            f"{path}: needs a 'label' column and a 'file' or 'id' column; found {list(frame.columns)}"
        )
    if frame.empty:
        raise ConfigError(f"{path}: no rows")
    for column in ("file", "id", "split", "uploader"):
        if column not in frame.columns:
            frame[column] = ""
        frame[column] = frame[column].fillna("").astype(str).str.strip()
    frame["label"] = frame["label"].fillna("").astype(str).str.strip()
    problems = []
    allowed = ", ".join(taxonomy.classes)
    for n, row in enumerate(frame.itertuples(index=False), start=2):  # line 1 is the header
        if not row.file and not row.id:
            problems.append(f"{path}: line {n}: neither 'file' nor 'id' is given")
        if row.label not in taxonomy.classes:
            problems.append(f"{path}: line {n}: label {row.label!r} is not one of: {allowed}")
        if row.split and row.split not in SPLITS:
            problems.append(
                f"{path}: line {n}: split {row.split!r} is not one of: {', '.join(SPLITS)}"
            )
    with_split = int((frame["split"] != "").sum())
    if 0 < with_split < len(frame):
        problems.append(
            f"{path}: {len(frame) - with_split} row(s) have no split while {with_split} do; "
            "give every row a split or none"
        )
    if problems:
        raise ManifestError(problems)
    return frame


def _place(source: Path, dest: Path) -> str:
    """Hard-link ``source`` at ``dest`` (same file system), else copy it; atomic either way."""
    with atomic_path(dest, suffix=dest.suffix) as tmp:
        try:
            tmp.unlink()  # atomic_path made it; a link needs the name free
            os.link(source, tmp)
            return "linked"
        except OSError:
            shutil.copyfile(source, tmp)
            return "copied"


def import_videos(
    videos_dir: str | Path,
    labels_csv: str | Path,
    root: str | Path,
    *,
    taxonomy: str | Path | Taxonomy | None = None,
) -> ImportSummary:
    """Import the labelled files of ``videos_dir`` into the dataset root ``root``."""
    videos_dir = Path(videos_dir)
    if not videos_dir.is_dir():
        raise ConfigError(f"{videos_dir}: no such folder of videos")
    root = Path(root)
    tax = load_taxonomy(taxonomy)
    frame = read_labels_csv(labels_csv, tax)
    rows = []
    seen: dict[str, int] = {}
    for n, row in enumerate(frame.itertuples(index=False), start=2):
        source = _source(videos_dir.resolve(), n, row.file or None, row.id or None)
        video_id = safe_video_id(row.id or Path(row.file).stem)
        if video_id in seen:
            raise ConfigError(
                f"{labels_csv}: lines {seen[video_id]} and {n} give the same video id {video_id!r}"
            )
        seen[video_id] = n
        suffix = source.suffix.lower() if source.suffix.lower() in VIDEO_SUFFIXES else ".mp4"
        rows.append((video_id, source, suffix, row))
    root.mkdir(parents=True, exist_ok=True)
    with root_lock(root, "import"):
        return _write(root, rows, tax, labels_csv)


def _write(
    root: Path, rows: list[tuple[str, Path, str, Any]], tax: Taxonomy, labels_csv: str | Path
) -> ImportSummary:
    videos_path = root / "videos.parquet"
    old: dict[str, dict[str, Any]] = {}
    if videos_path.exists():
        old = {
            str(r["video_id"]): r
            for r in read_manifest(videos_path, "videos").df.to_dict("records")
        }
    now = pd.Timestamp(dt.datetime.now(dt.UTC))
    summary = ImportSummary(root=root, videos=len(rows), linked=0, copied=0, unchanged=0)
    records, labels, splits = [], [], []
    for video_id, source, suffix, row in rows:
        rel = f"media/{PLATFORM}/{video_id}{suffix}"
        dest = inside_root(root, rel, what="media path")
        digest = sha256_file(source)
        previous = old.pop(video_id, None)
        if (
            previous is not None
            and previous.get("sha256") == digest
            and previous.get("media_path") == rel
            and dest.is_file()
            and sha256_file(dest) == digest
        ):
            record = previous  # unchanged: keep prepare's columns, it will not redo the video
            summary.unchanged += 1
        else:
            how = _place(source, dest)
            setattr(summary, how, getattr(summary, how) + 1)
            record = {
                "video_id": video_id,
                "platform": PLATFORM,
                "source_url": f"file:{row.file or source.name}",
                "status": "ok",
                "media_path": rel,
                "sha256": digest,
                "bytes": source.stat().st_size,
                "fetched_at": now,
            }
        record["uploader_id"] = row.uploader or None
        records.append(record)
        labels.append(
            {
                "video_id": video_id,
                "label": row.label,
                "method": "expert",  # given by the lab, not voted: one "judgement", agreed
                "n_votes": 0,
                "support": 1.0,
                "entropy": 0.0,
                "confidence": 1.0,
                "decided_stage": "import",
                "expert_changed": False,
            }
        )
        if row.split:
            splits.append({"video_id": video_id, "label": row.label, "split": row.split})
    records += list(old.values())  # rows of other imports or fetches in the same root stay
    params = {"labels_csv": str(labels_csv)}
    written = {
        "videos": write_manifest(
            pd.DataFrame(records), videos_path, "videos", params=params, taxonomy=tax
        )
    }
    written["labels"] = write_manifest(
        pd.DataFrame(labels), root / "labels.parquet", "labels", params=params, taxonomy=tax
    )
    if splits:
        frame = pd.DataFrame(splits)
        frame["fold"] = None
        written["split"] = write_manifest(
            frame,
            root / "split.parquet",
            "split",
            params=params,
            taxonomy=tax,
            extra_metadata={"variant": "imported"},
        )
        summary.by_split = {
            k: int(v) for k, v in frame["split"].value_counts().sort_index().items()
        }
    summary.by_label = {
        k: int(v)
        for k, v in pd.Series([r["label"] for r in labels]).value_counts().sort_index().items()
    }
    summary.manifests = {k: str(v) for k, v in written.items()}
    return summary
