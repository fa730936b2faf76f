"""Label Studio JSON exports -> the long annotations frame, with every oddity counted.

Shared by ``pull`` (a snapshot from the server) and ``import`` (a file exported elsewhere).
Cancelled annotations, empty results, several choices and unknown labels are skipped and counted;
``strict`` turns any of them into an error. A malformed export is a one-line ``ManifestError``
naming the task.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pandas as pd

from emotions_data.annotation.label_config import DATA_VIDEO, DATA_VIDEO_ID, FROM_NAME
from emotions_data.schema.errors import ManifestError
from emotions_data.schema.taxonomy import Taxonomy

COLUMNS = [
    "video_id",
    "annotator_id",
    "stage",
    "label",
    "created_at",
    "lead_time_s",
    "source",
    "group_id",
    "ls_project_id",
    "ls_task_id",
    "ls_annotation_id",
]


@dataclass
class ParseReport:
    tasks: int = 0
    annotations: int = 0
    kept: int = 0
    cancelled: int = 0
    empty: int = 0
    several_choices: int = 0
    unknown_label: int = 0
    repeated: int = 0
    outside_group: int = 0
    #: label -> how often, of the labels outside the taxonomy (not in ``to_dict``)
    unknown_labels: dict[str, int] = field(default_factory=dict)

    @property
    def problems(self) -> int:
        return self.cancelled + self.empty + self.several_choices + self.unknown_label

    def add(self, other: ParseReport) -> None:
        for key, value in asdict(other).items():
            if key == "unknown_labels":
                for label, n in value.items():
                    self.unknown_labels[label] = self.unknown_labels.get(label, 0) + n
            else:
                setattr(self, key, getattr(self, key) + value)

    def to_dict(self) -> dict[str, int]:
        out = asdict(self)
        del out["unknown_labels"]
        return out


def video_id_from_data(data: dict[str, Any]) -> str | None:
    """``video_id`` from the task data, else the file stem of the media path or URL."""
    vid = data.get(DATA_VIDEO_ID)
    if isinstance(vid, str | int) and str(vid):
        return str(vid)
    media = data.get(DATA_VIDEO) or next(
        (v for v in data.values() if isinstance(v, str) and "/" in v), None
    )
    if not isinstance(media, str) or not media:
        return None
    parsed = urlparse(media)
    path = parse_qs(parsed.query).get("d", [parsed.path])[0]
    stem = PurePosixPath(unquote(path)).stem
    return stem or None


def _choices(result: Any, from_name: str) -> list[str]:
    out: list[str] = []
    if not isinstance(result, list):
        return out
    for region in result:
        if not isinstance(region, dict) or region.get("type", "choices") != "choices":
            continue
        if region.get("from_name", from_name) != from_name:
            continue
        value = region.get("value") or {}
        choices = value.get("choices") if isinstance(value, dict) else None
        if isinstance(choices, list):
            out.extend(str(c) for c in choices)
    return out


_INT64 = 2**63


def _id(value: Any, what: str, where: str) -> int | None:
    """An id field of the export: an integer (as Label Studio writes it) or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -_INT64 <= value < _INT64:
        raise ManifestError([f"{where}: {what} {_shown(value)} is not an integer id"])
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _user_key(completed_by: Any, where: str) -> int | str | None:
    if completed_by is None:
        return None
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if isinstance(email, str) and email:
            return email
        if email is not None and email != "":
            raise ManifestError([f"{where}: completed_by.email {_shown(email)} is not an e-mail"])
        return _id(completed_by.get("id"), "completed_by.id", where)
    if isinstance(completed_by, str) and completed_by:
        return completed_by
    return _id(completed_by, "completed_by", where)


def _time(value: Any, what: str, where: str) -> str | None:
    # Only the type here: parsing is done once for all rows (per row it costs seconds on a stage).
    if value is None:
        return None
    if not isinstance(value, str):
        raise ManifestError([f"{where}: {what} {_shown(value)} is not an ISO 8601 time"])
    return value


def _seconds(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ManifestError([f"{where}: lead_time {_shown(value)} is not a number of seconds"])
    return float(value)


def parse_export(
    tasks: Any,
    *,
    stage: str,
    taxonomy: Taxonomy,
    annotator_of: Callable[[int | str | None], str],
    source: str,
    origin: str,
    group_id: str | None = None,
    project_id: int | None = None,
    strict: bool = False,
    from_name: str = FROM_NAME,
) -> tuple[pd.DataFrame, ParseReport]:
    """The judgements in ``tasks`` (a Label Studio JSON export) as annotation rows."""
    if not isinstance(tasks, list):
        raise ManifestError([f"{origin}: a Label Studio JSON export must be a list of tasks"])
    report = ParseReport(tasks=len(tasks))
    classes = set(taxonomy.classes)
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for n, task in enumerate(tasks):
        where = f"{origin}: task #{n}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise ManifestError([f"{where}: expected an object with a 'data' object"])
        task_id = _id(task.get("id"), "id", where)
        where = f"{origin}: task {task_id if task_id is not None else '#' + str(n)}"
        task_project = _id(task.get("project"), "project", where)
        if isinstance(task["data"].get(DATA_VIDEO_ID), bool | float | list | dict):
            raise ManifestError(
                [f"{where}: video_id {_shown(task['data'][DATA_VIDEO_ID])} is not a name"]
            )
        vid = video_id_from_data(task["data"])
        if vid is None:
            raise ManifestError([f"{where}: no 'video_id' and no media path in its data"])
        annotations = task.get("annotations")
        annotations = [] if annotations is None else annotations
        if not isinstance(annotations, list):
            raise ManifestError([f"{where}: 'annotations' must be a list"])
        for ann in annotations:
            if not isinstance(ann, dict):
                raise ManifestError([f"{where}: each annotation must be an object"])
            report.annotations += 1
            ann_id = _id(ann.get("id"), "annotation id", where)
            if not isinstance(ann.get("was_cancelled", False), bool | None):
                raise ManifestError(
                    [f"{where}: was_cancelled {_shown(ann['was_cancelled'])} is not true/false"]
                )
            if ann.get("was_cancelled"):
                report.cancelled += 1
                problems.append(f"{where}: annotation {ann.get('id')} was cancelled (skipped)")
                continue
            choices = _choices(ann.get("result"), from_name)
            if not choices:
                report.empty += 1
                problems.append(f"{where}: annotation {ann.get('id')} has no choice")
                continue
            if len(choices) > 1:
                report.several_choices += 1
                problems.append(f"{where}: annotation {ann.get('id')} has {len(choices)} choices")
                continue
            if choices[0] not in classes:
                report.unknown_label += 1
                report.unknown_labels[choices[0]] = report.unknown_labels.get(choices[0], 0) + 1
                problems.append(
                    f"{where}: label {choices[0]!r} is not in taxonomy {taxonomy.name!r}; "
                    f"allowed: {', '.join(taxonomy.classes)}"
                )
                continue
            where_ann = f"{where}, annotation {ann_id}"
            rows.append(
                {
                    "video_id": vid,
                    "annotator_id": annotator_of(_user_key(ann.get("completed_by"), where_ann)),
                    "stage": stage,
                    "label": choices[0],
                    "created_at": _time(ann.get("updated_at"), "updated_at", where_ann)
                    or _time(ann.get("created_at"), "created_at", where_ann),
                    "lead_time_s": _seconds(ann.get("lead_time"), where_ann),
                    "source": source,
                    "group_id": group_id,
                    "ls_project_id": project_id if project_id is not None else task_project,
                    "ls_task_id": task_id,
                    "ls_annotation_id": ann_id,
                }
            )
    if strict and problems:
        raise ManifestError(problems)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    raw_times = frame["created_at"]
    frame["created_at"] = pd.to_datetime(
        frame["created_at"], utc=True, errors="coerce", format="ISO8601"
    )
    unparsed = frame["created_at"].isna() & raw_times.notna()
    if unparsed.any():
        first = frame[unparsed].iloc[0]
        raise ManifestError(
            [
                f"{origin}: task {first['ls_task_id']}, annotation {first['ls_annotation_id']}: "
                f"time {_shown(raw_times[unparsed].iloc[0])} is not an ISO 8601 time "
                f"({int(unparsed.sum())} such annotation(s))"
            ]
        )
    for col in ("ls_project_id", "ls_task_id", "ls_annotation_id"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    # One judgement per annotator and item within a stage: an edited annotation keeps its last version.
    before = len(frame)
    frame = frame.sort_values(
        ["created_at", "ls_annotation_id"], kind="stable", na_position="first"
    )
    frame = frame.drop_duplicates(["video_id", "annotator_id", "stage"], keep="last")
    report.repeated = before - len(frame)
    report.kept = len(frame)
    return frame.reset_index(drop=True), report


def load_export_file(path: Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError([f"{path}: cannot read ({exc})"]) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ManifestError([f"{path}: not valid JSON ({exc})"]) from None
