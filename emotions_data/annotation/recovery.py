"""Rebuilding the annotation state from what Label Studio itself stores.

``annotation/state.json`` is bookkeeping, not the record: every project ``push`` makes carries
the root's tag, its stage and its group in its title (``[tag] stage / group G``) and, in its
description, a line ``emotions-data: {"root": ..., "stage": ..., "group": ..., "members": [...]}``;
every task carries its ``video_id`` in its data; every account made for an annotator has the
annotator id before the ``@`` of its e-mail. From these :func:`recover_state` finds again what a
lost (or stale) state file no longer knows, so a push after the loss creates no project and no
duplicate task, and a pull reads the same judgements.

The tag comes from ``annotation/root_id`` when ``state.json`` is gone; when that is gone too and
the server is the root's own embedded one (``ROOT/labelstudio``), the single tag found on it is
adopted. A server shared by several roots (``--ls-url``) needs ``root_id``: without it the
root starts afresh, as before.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from emotions_data.annotation.client import USER_DOMAIN, Client, _api
from emotions_data.annotation.exports import video_id_from_data
from emotions_data.annotation.localdb import local_database, read_project_tasks
from emotions_data.annotation.server import Server, server_dir
from emotions_data.annotation.server_setup import DATA_DIR
from emotions_data.annotation.state import State, project_key
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.safety import SAFE_NAME_PATTERN, check_safe_name, is_safe_name

#: Prefix of the machine-readable line in a managed project's description.
MARKER = "emotions-data: "
_TITLE = re.compile(
    rf"\[(?P<tag>{SAFE_NAME_PATTERN})\] (?P<stage>{SAFE_NAME_PATTERN}) / group (?P<group>{SAFE_NAME_PATTERN})"
)


def project_title(tag: str, stage: str, group: str) -> str:
    """The title of a managed project; stage and group must be safe names (they are ids here)."""
    check_safe_name(stage, "stage name")
    check_safe_name(group, "group name")
    return f"[{tag}] {stage} / group {group}"


def project_marker(tag: str, stage: str, group: str, members: list[str], own: bool) -> str:
    """``own``: pushed by the root whose embedded server this is (see :func:`_adopt_tag`)."""
    record = {
        "root": tag,
        "stage": stage,
        "group": group,
        "members": sorted(members),
        "own_server": own,
    }
    return MARKER + json.dumps(record, sort_keys=True)


@dataclass(frozen=True)
class ManagedProject:
    id: int
    tag: str
    stage: str
    group: str
    members: tuple[str, ...] = ()
    #: Pushed by the root that owns the (embedded) server, per the description's marker.
    own: bool = False


def _marker_from(description: str) -> tuple[tuple[str, ...], bool]:
    """(members, own_server) from a description's marker line; untrusted text, checked."""
    for line in description.splitlines():
        if not line.startswith(MARKER):
            continue
        try:
            record = json.loads(line[len(MARKER) :])
        except ValueError:
            return (), False
        if not isinstance(record, dict):
            return (), False
        names = record.get("members")
        members = (
            tuple(sorted(n for n in names if is_safe_name(n))) if isinstance(names, list) else ()
        )
        return members, record.get("own_server") is True
    return (), False


def managed_projects(client: Client) -> list[ManagedProject]:
    """Every project on the server whose title is one ``push`` makes (any root's)."""
    out: list[ManagedProject] = []
    with _api(client.server, "listing projects"):
        projects = list(client.ls.projects.list())
    for project in projects:
        match = _TITLE.fullmatch(str(getattr(project, "title", "") or ""))
        if match is None or getattr(project, "id", None) is None:
            continue
        members, own = _marker_from(str(getattr(project, "description", "") or ""))
        out.append(
            ManagedProject(
                id=int(project.id),
                tag=match["tag"],
                stage=match["stage"],
                group=match["group"],
                members=members,
                own=own,
            )
        )
    return sorted(out, key=lambda p: p.id)


def project_tasks(client: Client, server: Server, project_id: int) -> dict[str, int]:
    """video_id -> task id (the first, if a video has several) of a project's tasks."""
    db = local_database(server.data_dir)
    tasks: Any = (
        read_project_tasks(db, project_id) if db is not None else client.export_tasks(project_id)
    )
    out: dict[str, int] = {}
    for task in tasks if isinstance(tasks, list) else []:
        if isinstance(task, dict) and isinstance(task.get("data"), dict):
            vid = video_id_from_data(task["data"])
            if vid is not None and isinstance(task.get("id"), int):
                out.setdefault(vid, int(task["id"]))
    return out


def update_members(client: Client, state: State, stage: str, group: str, project_id: int) -> None:
    """Record the group's members (as pushed) in the project's description, for a rebuild."""
    members = state.members.get(project_key(stage, group), [])
    with _api(client.server, f"updating project {project_id}"):
        project = client.ls.projects.get(project_id)
        lines = [
            line
            for line in str(getattr(project, "description", "") or "").splitlines()
            if not line.startswith(MARKER)
        ]
        own = own_server(state, client.server)
        lines.append(project_marker(state.tag, stage, group, members, own))
        client.ls.projects.update(project_id, description="\n".join(lines))


@dataclass
class Recovery:
    """What :func:`recover_state` found again (empty when the state knew everything)."""

    projects: list[str] = field(default_factory=list)
    stages: set[str] = field(default_factory=set)
    users: int = 0


def own_server(state: State, server: Server) -> bool:
    """The server is the root's embedded one (its data under ROOT/labelstudio), not shared."""
    root = state.path.parent.parent
    return server.data_dir is not None and (
        server.data_dir.resolve() == (server_dir(root) / DATA_DIR).resolve()
    )


def _adopt_tag(state: State, managed: list[ManagedProject], server: Server) -> None:
    if state.tag_known or not own_server(state, server):
        return
    # Only projects this root pushed to its own server: other roots may use it too (--ls-url).
    tags = sorted({p.tag for p in managed if p.own})
    if len(tags) > 1:
        raise ConfigError(
            f"the state of this root is lost and its Label Studio holds projects of {len(tags)} "
            f"tags ({', '.join(tags)}); write the right one into annotation/root_id and run again"
        )
    if tags:
        state.tag = tags[0]
    state.tag_known = True


def recover_state(state: State, client: Client, server: Server, *, save: bool = True) -> Recovery:
    """Fill in from the server what ``state`` lacks; saves the state when anything was found
    (unless ``save`` is false: a reader such as ``status`` writes nothing into the root).

    The caller has bound ``state`` to ``server`` (``bind_server``) or checked they match.

    Projects of the root's tag whose (stage, group) the state does not know are adopted with
    their tasks and members; a stage without an assignment gets the one its projects hold; the
    members' accounts are found by e-mail. Known entries are never changed.
    """
    found = Recovery()
    managed = managed_projects(client)
    _adopt_tag(state, managed, server)
    for project in managed:
        if project.tag != state.tag:
            continue
        key = project_key(project.stage, project.group)
        if state.projects.get(key) == project.id:
            continue
        if key in state.projects and client.project_exists(state.projects[key]):
            continue  # the state's own project wins over a stray one with the same title
        state.projects[key] = project.id
        tasks = project_tasks(client, server, project.id)
        state.tasks[key] = {**tasks, **state.tasks.get(key, {})}
        state.members[key] = sorted(set(state.members.get(key, [])) | set(project.members))
        found.projects.append(key)
        found.stages.add(project.stage)
    for stage in sorted(found.stages):
        if stage in state.assignments:
            continue
        state.assignments[stage] = {
            key.split("/", 1)[1]: sorted(tasks)
            for key, tasks in sorted(state.tasks.items())
            if key.split("/", 1)[0] == stage and key in state.projects
        }
    if found.projects:
        # The accounts of the recovered projects' members (the server may hold other roots').
        wanted = {name for key in found.projects for name in state.members.get(key, [])}
        for email, uid in client.users_by_email().items():
            local, _, domain = email.partition("@")
            if domain == USER_DOMAIN and local in wanted and local not in state.users:
                state.users[local] = uid
                found.users += 1
    if save and (found.projects or found.users):
        state.server_url = state.server_url or server.identity
        state.save()
    return found
