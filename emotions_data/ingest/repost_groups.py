"""``prepare``'s repost step: group the reposts, judge each copy, keep the original, report.

1. The per-second hashes of every prepared video (``ROOT/hashes/<video_id>.npz``, without
   their thumbnails) go through the repost search (``ingest.reposts``); candidate pairs are
   verified on their thumbnails, read only for the videos of a candidate pair.
2. Each group's copies are compared with one another (``ingest.copy_edits``) and the keep
   rule picks the original (``ingest.keeprule``).
3. The other copies become ``duplicate`` in the videos manifest (``dup_of``, and in
   ``error_message`` why the kept copy won); one row per copy of every group goes to the
   groups report ``ROOT/reposts.parquet`` (kind ``reposts``: what each copy adds or lacks,
   kept or not, and why), rewritten atomically on every run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from emotions_data.ingest.copy_edits import CopyEdits, judge_group
from emotions_data.ingest.framehash import VideoHashes, load_thumbs
from emotions_data.ingest.keeprule import Member, choose, member_of
from emotions_data.ingest.reposts import MatchSettings, PairMatch, connected_groups, find_reposts
from emotions_data.schema.errors import ManifestError
from emotions_data.schema.io import read_manifest, write_manifest
from emotions_data.schema.manifests import REPOSTS
from emotions_data.schema.safety import inside_root

REPORT_NAME = "reposts.parquet"
#: Thumbnails held in memory at once while verifying candidates (4 KiB a sample each).
_THUMB_CACHE = 256


def hashes_path(root: Path, video_id: str) -> Path:
    """Where ``prepare`` keeps a video's per-second frame hashes (``framehash.VideoHashes``)."""
    return inside_root(root, "hashes", f"{video_id}.npz", what="frame hashes")


def _thumb_source(paths: list[Path]) -> Callable[[int], npt.NDArray[np.uint8] | None]:
    @lru_cache(maxsize=_THUMB_CACHE)
    def thumbs(index: int) -> npt.NDArray[np.uint8] | None:
        return load_thumbs(paths[index])

    return thumbs


def report_row(
    member: Member, edits: CopyEdits, group_id: str, kept: bool, note: str, content_share: float
) -> dict[str, Any]:
    """The groups report's row of one copy."""
    return {
        "group_id": group_id,
        "video_id": member.video_id,
        "kept": kept,
        "edits": ",".join(member.changes) or None,
        "content_share": content_share,
        "overlay_share": edits.overlay_share,
        "intro_s": edits.intro_s,
        "outro_s": edits.outro_s,
        "trimmed_s": edits.trimmed_s,
        "mean_shift": edits.mean_shift,
        "contrast_ratio": edits.contrast_ratio,
        "saturation_ratio": edits.saturation_ratio,
        "field_of_view": edits.field_of_view,
        "tempo": edits.tempo,
        "mirrored": edits.mirrored,
        "psnr_db": None if math.isnan(edits.psnr_db) else edits.psnr_db,
        "compared": edits.compared,
        "note": note,
    }


def judge(
    rows: list[dict[str, Any]],
    paths: list[Path],
    matches: list[PairMatch],
    group: list[int],
    settings: MatchSettings,
) -> tuple[int, list[tuple[Member, CopyEdits, float, str]]]:
    """One group's kept member (position in ``group``) and, per member, its keep-rule view,
    edits, content share and note."""
    loaded = [VideoHashes.load(paths[i], thumbs=True) for i in group]
    position = {v: k for k, v in enumerate(group)}
    known = {
        (position[m.a], position[m.b]): m for m in matches if m.a in position and m.b in position
    }
    edits = judge_group(loaded, known, settings)
    members = [member_of(rows[i], loaded[k].content_share, edits[k]) for k, i in enumerate(group)]
    kept, notes = choose(members)
    return kept, [
        (members[k], edits[k], loaded[k].content_share, notes[k]) for k in range(len(group))
    ]


def _search(
    root: Path, alive: list[dict[str, Any]], settings: MatchSettings
) -> tuple[list[dict[str, Any]], list[Path], list[PairMatch]]:
    """The rows with hash files, their paths, and the reposts found among them."""
    rows: list[dict[str, Any]] = []
    paths: list[Path] = []
    hashes: list[VideoHashes] = []
    for row in alive:
        path = hashes_path(root, str(row["video_id"]))
        if row.get("phash") and path.is_file():
            rows.append(row)
            paths.append(path)
            hashes.append(VideoHashes.load(path))
    return rows, paths, find_reposts(hashes, settings, thumbs=_thumb_source(paths))


def kept_among(
    root: Path, rows: list[dict[str, Any]], settings: MatchSettings
) -> tuple[str, str] | None:
    """The ``video_id`` the keep rule keeps among ``rows`` (prepared: their hash files under
    ``root``) and the criterion that put it first, when they form one group; else None. What
    a benchmark or a reviewer asks of a handful of copies, without touching the manifests."""
    found, paths, matches = _search(root, rows, settings)
    groups = connected_groups(len(found), [(m.a, m.b) for m in matches])
    if len(groups) != 1 or len(groups[0]) != len(rows):
        return None
    kept, judged = judge(found, paths, matches, groups[0], settings)
    return str(judged[kept][0].video_id), judged[kept][3]


def mark_reposts(root: Path, alive: list[dict[str, Any]], settings: MatchSettings) -> int:
    """Group the reposts among ``alive`` rows, keep each group's original, write the groups
    report; returns how many rows were marked ``duplicate``."""
    rows, paths, matches = _search(root, alive, settings)
    marked = 0
    report: list[dict[str, Any]] = []
    for group in connected_groups(len(rows), [(m.a, m.b) for m in matches]):
        kept, judged = judge(rows, paths, matches, group, settings)
        kept_id = judged[kept][0].video_id
        for k, i in enumerate(group):
            member, edits, share, note = judged[k]
            report.append(report_row(member, edits, kept_id, k == kept, note, share))
            if k == kept:
                continue
            marked += 1
            rows[i].update(
                status="duplicate",
                dup_of=kept_id,
                error_message=f"repost (near duplicate) of {kept_id}; {note}; {judged[kept][3]}",
            )
    _write_report(root, pd.DataFrame(report, columns=REPOSTS.column_names))
    return marked


def _write_report(root: Path, frame: pd.DataFrame) -> None:
    """Write the groups report, unless the file already holds exactly these rows (a re-run
    that changes nothing leaves every output untouched)."""
    path = root / REPORT_NAME
    if path.is_file():
        try:
            old = read_manifest(path, "reposts").df
            if len(old) == len(frame) and old.astype(object).where(old.notna(), None).to_dict(
                "records"
            ) == frame.astype(object).where(frame.notna(), None).to_dict("records"):
                return
        except ManifestError:
            pass  # unreadable or of another version: written anew
    write_manifest(frame, path, "reposts", params={"groups": int(frame["group_id"].nunique())})
