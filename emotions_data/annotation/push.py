"""``push``: one Label Studio project per (stage, group), holding the tasks that group must do.

Which videos a group gets is decided once per stage and kept in the state file: the first stage
shards all videos across the groups (stratified by platform, seeded); later stages take the
assignment ``escalate`` wrote. Re-running a push (after a crash, or just twice) reuses projects
found by title and imports only videos that have no task yet, read back from the project itself;
a group whose tasks are all in the state file is left as it is, even if its members changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotions_data.annotation import recovery
from emotions_data.annotation.accounts import account_emails, deactivate_removed
from emotions_data.annotation.blinding import publish_access
from emotions_data.annotation.check import check_groups
from emotions_data.annotation.client import Client
from emotions_data.annotation.exports import video_id_from_data
from emotions_data.annotation.label_config import DATA_VIDEO, DATA_VIDEO_ID, label_config
from emotions_data.annotation.protocol import EXPERT_GROUP, Protocol, Stage
from emotions_data.annotation.server import Server
from emotions_data.annotation.state import State, project_key
from emotions_data.schema.errors import ConfigError, ManifestError

IMPORT_BATCH = 5000


@dataclass
class PushResult:
    stage: str
    projects: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: The stage's assignment holds no item (e.g. nothing uncertain for the expert).
    nothing_to_push: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "nothing_to_push": self.nothing_to_push,
            "projects": self.projects,
            "tasks_created": self.created,
            "tasks_existing": self.existing,
            "warnings": self.warnings,
        }


def crowd_groups(groups: pd.DataFrame) -> list[str]:
    names = groups.loc[groups["group_id"] != EXPERT_GROUP, "group_id"].astype(str)
    return sorted(names.unique().tolist())


def active_members(groups: pd.DataFrame, group: str) -> list[str]:
    rows = groups[(groups["group_id"].astype(str) == group) & groups["active"].astype(bool)]
    return sorted(rows["annotator_id"].astype(str).tolist())


def shard_videos(videos: pd.DataFrame, group_names: list[str], seed: int) -> dict[str, list[str]]:
    """Deal videos to groups round-robin within each platform, in a seeded order."""
    if not group_names:
        raise ConfigError("the groups manifest has no annotator group")
    rng = np.random.default_rng(seed)
    frame = videos[["video_id"]].copy()
    frame["platform"] = videos["platform"].astype(str) if "platform" in videos else ""
    frame = frame.sort_values(["platform", "video_id"], kind="stable")
    frame["key"] = rng.random(len(frame))
    frame = frame.sort_values(["platform", "key"], kind="stable")
    # One counter across platforms keeps group sizes within one of each other.
    frame["group"] = [group_names[i % len(group_names)] for i in range(len(frame))]
    return {g: sorted(frame.loc[frame["group"] == g, "video_id"].astype(str)) for g in group_names}


def usable_videos(videos: pd.DataFrame) -> pd.DataFrame:
    if "status" in videos.columns:
        videos = videos[videos["status"].astype(str) == "ok"]
    return videos.reset_index(drop=True)


class _MediaUrls:
    """Task media URLs under the Local Storage root, for many videos at once.

    A path is resolved through its folder, resolved once per folder (a per-file
    ``Path.resolve`` costs more than the import itself for tens of thousands of videos).
    Manifest paths are relative and inside the root (``read_manifest`` checks it).
    """

    def __init__(self, server: Server, root: Path) -> None:
        self.server = server
        self.root = Path(root)
        self._folders: dict[str, Path] = {}

    def relative(self, media: str) -> Path | None:
        """``media`` relative to the served root, or ``None`` when it lies outside."""
        if self.server.media_root is None:
            return None
        folder, name = os.path.split(media)
        resolved = self._folders.get(folder)
        if resolved is None:
            resolved = self._folders[folder] = (self.root / folder).resolve()
        try:
            return (resolved / name).relative_to(self.server.media_root)
        except ValueError:
            return None


def _media_of(videos: pd.DataFrame) -> list[str | None]:
    """Per row the normalised media path, else the original's (first non-empty string)."""
    columns = [
        videos[c].tolist() if c in videos.columns else [None] * len(videos)
        for c in ("normalized_path", "media_path")
    ]
    # Manifest rows hold pd.NA for missing paths, which has no truth value.
    return [
        next((v for v in pair if isinstance(v, str) and v), None)
        for pair in zip(*columns, strict=True)
    ]


def task_datas(videos: pd.DataFrame, server: Server, root: Path) -> list[dict[str, Any]]:
    """The tasks: ``video_id`` always; the media URL served by the Local Storage, else the source."""
    urls = _MediaUrls(server, root)
    sources = (
        videos["source_url"].tolist() if "source_url" in videos.columns else [None] * len(videos)
    )
    out: list[dict[str, Any]] = []
    for vid, media, source in zip(
        videos["video_id"].astype(str).tolist(), _media_of(videos), sources, strict=True
    ):
        rel = urls.relative(media) if media is not None else None
        if rel is not None:
            video = f"/data/local-files/?d={rel.as_posix()}"
        else:
            video = str(source) if isinstance(source, str) and source else ""
        out.append({DATA_VIDEO_ID: vid, DATA_VIDEO: video})
    return out


def media_folders(videos: pd.DataFrame, server: Server, root: Path) -> list[Path]:
    """Top-level folders (under the served root) holding the videos' media files.

    Label Studio serves a local file only through a Local Storage connection whose folder
    contains it, and refuses a connection on the served root itself, so one per sub-folder.
    """
    if server.media_root is None:
        return []
    urls = _MediaUrls(server, root)
    folders: set[Path] = set()
    for col in ("normalized_path", "media_path"):
        if col not in videos.columns:
            continue
        for media in videos[col].dropna().astype(str).unique():
            rel = urls.relative(media)
            if rel is not None and len(rel.parts) > 1:
                folders.add(server.media_root / rel.parts[0])
    return sorted(f for f in folders if f.is_dir())


def project_title(state: State, stage: str, group: str) -> str:
    return recovery.project_title(state.tag, stage, group)


def ensure_project(
    client: Client, state: State, protocol: Protocol, stage: Stage, group: str, overlap: int
) -> int:
    key = project_key(stage.name, group)
    if key in state.projects:
        return state.projects[key]
    title = project_title(state, stage.name, group)
    found = client.find_project(title)
    if found is None:
        description = (
            f"emotions-data protocol {protocol.name!r}, stage {stage.name!r}, group {group}; "
            f"{overlap} judgement(s) per video. Managed by `emotions-data annotate`.\n"
            + recovery.project_marker(
                state.tag,
                stage.name,
                group,
                state.members.get(key, []),
                recovery.own_server(state, client.server),
            )
        )
        found = client.create_project(title, label_config(protocol.taxonomy), overlap, description)
    state.projects[key] = found
    state.save()
    return found


def existing_tasks(client: Client, project_id: int) -> dict[str, int]:
    """video_id -> task id of the tasks already in the project (read back from the server)."""
    out: dict[str, int] = {}
    for task in client.export_tasks(project_id):
        if isinstance(task, dict) and isinstance(task.get("data"), dict):
            vid = video_id_from_data(task["data"])
            if vid is not None and task.get("id") is not None:
                out.setdefault(vid, int(task["id"]))
    return out


def stage_assignment(
    state: State, stage: Stage, videos: pd.DataFrame, groups: pd.DataFrame, seed: int
) -> dict[str, list[str]]:
    if stage.name in state.assignments:
        return state.assignments[stage.name]
    if stage.source != "all":
        raise ConfigError(
            f"stage {stage.name!r} takes its items from {', '.join(stage.from_stages)}; "
            f"run `emotions-data annotate escalate --to {stage.name}` first"
        )
    if stage.kind == "expert":
        assignment = {EXPERT_GROUP: sorted(videos["video_id"].astype(str))}
    else:
        assignment = shard_videos(videos, crowd_groups(groups), seed)
    state.assignments[stage.name] = assignment
    state.save()
    return assignment


def _complete_recovered(
    state: State,
    stage: Stage,
    videos: pd.DataFrame,
    groups: pd.DataFrame,
    seed: int,
    found: dict[str, list[str]],
) -> dict[str, list[str]]:
    """A first stage's assignment rebuilt from its projects may lack what a crash left unpushed:
    the seeded assignment replaces it when it agrees with every task already on the server."""
    if stage.kind == "expert":
        seeded = {EXPERT_GROUP: sorted(videos["video_id"].astype(str))}
    else:
        seeded = shard_videos(videos, crowd_groups(groups), seed)
    if seeded == found or not all(set(v) <= set(seeded.get(g, [])) for g, v in found.items()):
        return found
    state.assignments[stage.name] = seeded
    state.save()
    return seeded


def push_stage(
    root: Path,
    server: Server,
    protocol: Protocol,
    stage_name: str,
    videos: pd.DataFrame,
    groups: pd.DataFrame,
    *,
    seed: int = 0,
) -> PushResult:
    stage = protocol.stage(stage_name)
    if not stage.labels_items:
        raise ConfigError(f"stage {stage.name!r} is an {stage.kind} stage; nothing to push")
    if "video_id" not in videos.columns:
        raise ManifestError(["videos: missing column 'video_id'"])
    videos = usable_videos(videos)
    state = State.load(root)
    state.bind_server(server.identity)
    client = Client(server)
    # A lost or stale state: projects, tasks and assignments are found again on the server.
    recovered = recovery.recover_state(state, client, server)
    assignment = stage_assignment(state, stage, videos, groups, seed)
    if stage.name in recovered.stages and stage.source == "all":
        assignment = _complete_recovered(state, stage, videos, groups, seed, assignment)
    by_id = videos.set_index(videos["video_id"].astype(str), drop=False)
    result = PushResult(stage=stage.name)
    if not any(assignment.values()):
        result.nothing_to_push = True
        return result
    pending = [
        g
        for g, vids in assignment.items()
        if vids
        and not (
            project_key(stage.name, g) in state.projects
            and set(vids) <= set(state.tasks.get(project_key(stage.name, g), {}))
        )
    ]
    if pending:
        # Checked before anything is pushed; a finished push is left as it is (re-runs).
        check = check_groups(groups, protocol, stage=stage)
        result.warnings.extend(check.warnings)
        check.raise_errors()
    # Removed annotators lose their login before a new stage opens (embedded server).
    deactivate_removed(server, state, groups)
    for group, vids in sorted(assignment.items()):
        if not vids:
            continue
        key = project_key(stage.name, group)
        if key in state.projects and set(vids) <= set(state.tasks.get(key, {})):
            # Pushed in full already: the group's tasks, users and members are what they were
            # then, whatever an evaluation changed in the group since (a re-run changes nothing).
            result.projects[group] = state.projects[key]
            result.created[group] = 0
            result.existing[group] = len(vids)
            continue
        members = active_members(groups, group)
        if not members:
            raise ConfigError(f"group {group!r} has no active annotator for stage {stage.name!r}")
        overlap = min(stage.judgements, len(members))
        if overlap < stage.judgements:
            result.warnings.append(
                f"group {group}: {len(members)} active annotator(s), fewer than the "
                f"{stage.judgements} judgements per video the protocol asks"
            )
        # Users first: a new group member must exist before anyone pulls this stage.
        state.users.update(client.ensure_users(members, state.users, account_emails(groups)))
        state.save()
        # Who belonged to the group when it got these tasks: a later move is not an outsider.
        before = state.members.get(key)
        state.members[key] = sorted(set(before or []) | set(members))
        known_project = key in state.projects
        pid = ensure_project(client, state, protocol, stage, group, overlap)
        if known_project and before != state.members[key]:
            # Kept on the server too, so a rebuilt state knows who the insiders are.
            recovery.update_members(client, state, stage.name, group, pid)
        result.projects[group] = pid
        for folder in media_folders(by_id.loc[[v for v in vids if v in by_id.index]], server, root):
            client.ensure_local_storage(pid, str(folder))
        known = state.tasks.setdefault(key, {})
        if not set(vids) <= set(known):
            # The state may lag the server (a crash after an import): ask the project itself.
            known.update(existing_tasks(client, pid))
            state.save()
        missing = [v for v in vids if v not in known]
        unknown = [v for v in missing if v not in by_id.index]
        if unknown:
            raise ManifestError(
                [
                    f"videos manifest has no usable row for video {unknown[0]!r} assigned to group {group}"
                ]
            )
        for start in range(0, len(missing), IMPORT_BATCH):
            batch = missing[start : start + IMPORT_BATCH]
            ids = client.import_tasks(pid, task_datas(by_id.loc[batch], server, root))
            if len(ids) != len(batch):
                # Cannot map ids to videos by position: re-read the project instead.
                known.update(existing_tasks(client, pid))
            else:
                known.update(zip(batch, ids, strict=True))
            state.save()
        result.created[group] = len(missing)
        result.existing[group] = len(vids) - len(missing)
    # Annotators reach only their group's projects of the newest stage (embedded server).
    publish_access(server, state, [s.name for s in protocol.stages], groups)
    return result
