"""Reading and merging the protocol's manifests (annotations, groups, labels), writing on change.

Pull and import replace one stage's rows of the annotations manifest and keep the others, so a
pull after more labelling extends the file and a second identical pull leaves it byte for byte
as it was (nothing is rewritten when the rows did not change).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.annotation.exports import COLUMNS
from emotions_data.schema.errors import ManifestError
from emotions_data.schema.io import parent_entry, read_manifest, write_manifest
from emotions_data.schema.taxonomy import Taxonomy


def read_annotations(path: Path | None, taxonomy: Taxonomy | None = None) -> pd.DataFrame:
    """The annotations manifest's rows, or an empty frame when the file does not exist yet."""
    if path is None or not Path(path).exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return read_manifest(path, "annotations", taxonomy=taxonomy).df


def read_groups(path: Path) -> pd.DataFrame:
    return read_manifest(path, "groups").df


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Declared columns, rows by stage (in order of first appearance), video, annotator.

    Stages keep the order in which they were first pulled, which is the protocol's order, so
    reports that list stages as they appear (``agreement``) follow the protocol.
    """
    frame = frame.copy()
    for col in COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    frame = frame[COLUMNS]
    frame["_stage_rank"] = pd.factorize(frame["stage"])[0]
    frame = frame.sort_values(["_stage_rank", "video_id", "annotator_id"], kind="stable")
    return frame.drop(columns="_stage_rank").reset_index(drop=True)


def replace_stage(existing: pd.DataFrame, new: pd.DataFrame, stage: str) -> pd.DataFrame:
    """``existing`` with the rows of ``stage`` replaced by ``new``; the stage keeps its place."""
    keep = existing[existing["stage"] != stage] if len(existing) else existing
    parts = [p for p in (keep, new) if len(p)]
    if not parts:
        return _normalise(new)
    merged = pd.concat([_normalise(p) for p in parts], ignore_index=True)
    order = (
        list(dict.fromkeys([*existing["stage"].astype(str), stage])) if len(existing) else [stage]
    )
    rank = {name: i for i, name in enumerate(order)}
    merged = merged.iloc[merged["stage"].map(rank).argsort(kind="stable")]
    return _normalise(merged)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    left = a.reset_index(drop=True).astype(object).where(a.notna().reset_index(drop=True), None)
    right = b.reset_index(drop=True).astype(object).where(b.notna().reset_index(drop=True), None)
    return bool((left == right).all().all()) or left.equals(right)


def write_annotations_if_changed(
    frame: pd.DataFrame,
    path: Path,
    *,
    taxonomy: Taxonomy,
    params: dict[str, Any],
    parents: Sequence[Path] = (),
) -> bool:
    """Write the manifest unless the file already holds exactly these rows; ``True`` if written."""
    frame = _normalise(frame)
    if Path(path).exists():
        current = _normalise(read_annotations(path, taxonomy))
        if _same(current, _normalise(_roundtrip(frame, taxonomy))):
            return False
    write_manifest(
        frame, path, "annotations", params=params, parents=list(parents), taxonomy=taxonomy
    )
    return True


def _roundtrip(
    frame: pd.DataFrame, taxonomy: Taxonomy | None, kind: str = "annotations"
) -> pd.DataFrame:
    """The frame as it would read back (declared dtypes), to compare with the file."""
    import pyarrow as pa

    from emotions_data.schema.io import validate_table
    from emotions_data.schema.manifests import KINDS

    mkind = KINDS[kind]
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    for col in mkind.columns:
        if col.name not in table.column_names:
            table = table.append_column(
                pa.field(col.name, col.type), pa.nulls(len(table), col.type)
            )
    _, df = validate_table(table, mkind, taxonomy, source=f"<{kind}>")
    return df


def write_manifest_if_changed(
    frame: pd.DataFrame,
    path: Path,
    kind: str,
    *,
    params: dict[str, Any],
    parents: Sequence[Path] = (),
    taxonomy: Taxonomy | None = None,
) -> bool:
    """Write unless the file holds these rows, params and parents already; ``True`` if written.

    Every write stamps a new ``created_at``, so an unconditional write would make a re-run that
    computed the same thing look like a change (a different file, a different sha256).
    """
    if Path(path).exists():
        try:
            current = read_manifest(path, kind, taxonomy=taxonomy)
        except ManifestError:
            current = None  # unreadable or another kind: replace it
        if (
            current is not None
            and current.meta.params == json.loads(json.dumps(params, sort_keys=True, default=str))
            and current.meta.parents == [parent_entry(p) for p in parents]
            and _same(current.df, _roundtrip(frame, taxonomy, kind))
        ):
            return False
    write_manifest(frame, path, kind, params=params, parents=list(parents), taxonomy=taxonomy)
    return True


def write_groups(
    groups: pd.DataFrame, path: Path, *, params: dict[str, Any], parents: Sequence[Path] = ()
) -> Path:
    return write_manifest(groups, path, "groups", params=params, parents=list(parents))
