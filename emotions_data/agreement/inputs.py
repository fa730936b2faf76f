"""Read the judgements to analyse: an annotations manifest (Parquet) or a CSV with its columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emotions_data.schema.errors import ManifestError
from emotions_data.schema.io import read_manifest
from emotions_data.schema.taxonomy import Taxonomy, load_taxonomy

REQUIRED = ("video_id", "annotator_id", "label")
#: The manifest columns the statistics read (the others are not read at all).
USED = (*REQUIRED, "stage", "group_id")
#: Stage given to CSV rows that have no ``stage`` column.
DEFAULT_STAGE = "primary"


def load_annotations(
    path: str | Path,
    taxonomy: Taxonomy | str | Path | None = None,
    *,
    with_groups: bool = True,
) -> tuple[pd.DataFrame, Taxonomy]:
    """The long frame and the taxonomy its labels belong to.

    Parquet is read as an annotations manifest (validated; its own taxonomy unless one is
    given). A CSV needs video_id, annotator_id and label; stage and group_id are optional.
    ``with_groups=False``: the manifest's group_id column is not read (not needed).
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except FileNotFoundError:
            raise ManifestError([f"{path}: no such file"]) from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ManifestError([f"{path}: not a readable CSV ({exc})"]) from None
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise ManifestError(
                [f"{path}: missing column(s) {missing}; a judgements CSV has {', '.join(REQUIRED)}"]
            )
        if "stage" not in frame.columns:
            frame["stage"] = DEFAULT_STAGE
        frame["stage"] = frame["stage"].fillna(DEFAULT_STAGE)
        _refuse_duplicates(frame, path)
        return frame, load_taxonomy(taxonomy)
    used = USED if with_groups else tuple(c for c in USED if c != "group_id")
    # Ids and labels as Categoricals: millions of judgements repeat a few distinct values,
    # and the codes carry through the checks, a stage filter and the encoding.
    manifest = read_manifest(path, "annotations", taxonomy=taxonomy, columns=used, categorical=used)
    tax = load_taxonomy(taxonomy) if taxonomy is not None else manifest.taxonomy
    return manifest.df, tax


def _refuse_duplicates(frame: pd.DataFrame, path: Path) -> None:
    """One judgement per (item, annotator, stage), as in a manifest: a row twice would count twice."""
    key = ["video_id", "annotator_id", "stage"]
    dup = frame.duplicated(subset=key, keep=False)
    if not dup.any():
        return
    rows = frame.index[dup]
    first = frame.loc[rows[0], key]
    again = rows[1:][(frame.loc[rows[1:], key] == first).all(axis=1)][0]
    raise ManifestError(
        [
            f"{path}: duplicate judgement (video_id {first['video_id']!r}, annotator_id "
            f"{first['annotator_id']!r}, stage {first['stage']!r}) on lines {rows[0] + 2} and "
            f"{again + 2}; {int(frame.duplicated(subset=key).sum())} duplicate row(s) in all; "
            "keep one judgement per item, annotator and stage"
        ]
    )


def load_groups(path: str | Path) -> pd.Series:
    """annotator_id -> group_id from a groups manifest."""
    manifest = read_manifest(path, "groups", columns=("annotator_id", "group_id"))
    df = manifest.df
    return pd.Series(
        df["group_id"].astype(str).to_numpy(), index=df["annotator_id"].astype(str), name="group_id"
    )


def final_crowd(
    frame: pd.DataFrame, groups_path: str | Path, include_removed: bool = False
) -> tuple[pd.DataFrame, str]:
    """The judgements of the final crowd: annotators an evaluation removed (``active`` false in
    the groups manifest) left out unless ``include_removed``; plus a line that says which."""
    df = read_manifest(groups_path, "groups").df
    removed = sorted(df.loc[~df["active"].astype(bool), "annotator_id"].astype(str))
    shown = ", ".join(removed[:8]) + (" ..." if len(removed) > 8 else "")
    if not removed:
        return frame, "final (no annotator removed by an evaluation)"
    if include_removed:
        return frame, (
            f"everyone, including {len(removed)} annotator(s) removed by an evaluation ({shown})"
        )
    gone = frame["annotator_id"].astype(str).isin(removed)
    return frame[~gone], (
        f"final: {len(removed)} annotator(s) removed by an evaluation left out ({shown}; "
        f"{int(gone.sum())} judgement(s)); --include-removed keeps them"
    )
