"""Label Studio bookkeeping under ``ROOT/annotation/state.json``, written atomically.

It holds what the manifests cannot: project ids per (stage, group), task ids per video, Label
Studio user ids per annotator, and each stage's assignment of videos to groups (so a re-run pushes
exactly the same items). Losing it is recoverable (``recovery.recover_state``): the root's tag
is kept apart in ``annotation/root_id`` too, projects are found again by the tag, stage and group
in their title, tasks by the ``video_id`` in their data, users by e-mail.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ConfigError
from emotions_data.schema.safety import is_safe_name

STATE_PATH = Path("annotation") / "state.json"
#: The root's tag on its own (kept equal to the state's): survives a lost ``state.json``.
ROOT_ID_PATH = Path("annotation") / "root_id"


def project_key(stage: str, group: str) -> str:
    return f"{stage}/{group}"


@dataclass
class State:
    path: Path
    #: The server the ids belong to (``Server.identity``: data folder or URL).
    server_url: str | None = None
    #: Short random tag in project titles, so several datasets can share one server.
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    users: dict[str, int] = field(default_factory=dict)
    projects: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, dict[str, int]] = field(default_factory=dict)
    #: "stage/group" -> the group's active annotators when the stage was pushed
    members: dict[str, list[str]] = field(default_factory=dict)
    #: stage -> group -> video ids
    assignments: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: False when there was no state file: the ids must be found again on the server.
    from_file: bool = True
    #: True when the tag came from the state file or ``root_id`` (not made up just now).
    tag_known: bool = True

    @classmethod
    def load(cls, root: Path) -> State:
        path = Path(root) / STATE_PATH
        if not path.exists():
            tag = read_root_id(Path(root))
            if tag is None:
                return cls(path=path, from_file=False, tag_known=False)
            return cls(path=path, tag=tag, from_file=False)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise ConfigError(f"{path}: annotation state is not valid JSON") from None
        return cls(
            path=path,
            server_url=data.get("server_url"),
            tag=str(data.get("tag") or secrets.token_hex(3)),
            users={str(k): int(v) for k, v in (data.get("users") or {}).items()},
            projects={str(k): int(v) for k, v in (data.get("projects") or {}).items()},
            tasks={
                str(k): {str(v): int(t) for v, t in m.items()}
                for k, m in (data.get("tasks") or {}).items()
            },
            members={str(k): [str(a) for a in v] for k, v in (data.get("members") or {}).items()},
            assignments={
                str(s): {str(g): [str(v) for v in vids] for g, vids in groups.items()}
                for s, groups in (data.get("assignments") or {}).items()
            },
        )

    def save(self) -> None:
        data = {
            "server_url": self.server_url,
            "tag": self.tag,
            "users": dict(sorted(self.users.items())),
            "projects": dict(sorted(self.projects.items())),
            "tasks": {k: dict(sorted(v.items())) for k, v in sorted(self.tasks.items())},
            "members": dict(sorted(self.members.items())),
            "assignments": self.assignments,
        }
        atomic_write_text(self.path, json.dumps(data, indent=1) + "\n")
        root_id = self.path.parent / ROOT_ID_PATH.name
        if read_root_id(self.path.parent.parent) != self.tag:
            atomic_write_text(root_id, self.tag + "\n")
        self.from_file = self.tag_known = True

    def bind_server(self, identity: str) -> None:
        """Ids are only meaningful on the server that made them; a new server starts afresh."""
        if self.server_url and self.server_url != identity:
            self.users.clear()
            self.projects.clear()
            self.tasks.clear()
        self.server_url = identity

    def stage_projects(self, stage: str) -> dict[str, int]:
        """group -> project id of the stage's projects."""
        prefix = f"{stage}/"
        return {k[len(prefix) :]: v for k, v in self.projects.items() if k.startswith(prefix)}

    def user_names(self) -> dict[int, str]:
        return {v: k for k, v in self.users.items()}


def read_root_id(root: Path) -> str | None:
    """The root's tag from ``annotation/root_id``; ``None`` when absent or not a safe name."""
    try:
        text = (Path(root) / ROOT_ID_PATH).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if is_safe_name(text) else None
