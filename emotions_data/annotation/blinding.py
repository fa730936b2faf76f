"""Who may open which project on the embedded server: the grant file its middleware enforces.

The hardened embedded Label Studio (``ls_plugin/emotions_data_ls_blinding.py``) lets an
annotator reach only the projects ``ROOT/labelstudio/access.json`` grants to their Label Studio
user id: the projects of their group in the current stage, the latest stage of the protocol that
has projects. Removed annotators get no grant (and their accounts are deactivated, see
``accounts.py``). Written atomically by ``push`` and ``annotate users``; the server re-reads it
when it changes. An external server (``--ls-url``) has no such middleware: nothing is enforced.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from emotions_data.annotation.server import ACCESS_FILE, Server
from emotions_data.annotation.state import State
from emotions_data.schema.atomic import atomic_write_text


def current_stage(state: State, stage_order: Sequence[str]) -> str | None:
    """The latest stage (in protocol order) that has projects on the server."""
    pushed = {key.split("/", 1)[0] for key in state.projects}
    latest = [s for s in stage_order if s in pushed]
    return latest[-1] if latest else None


def inactive_annotators(groups: pd.DataFrame | None) -> set[str]:
    if groups is None or "active" not in groups.columns:
        return set()
    return set(groups.loc[~groups["active"].astype(bool), "annotator_id"].astype(str))


def access_policy(
    state: State, stage_order: Sequence[str], inactive: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``{"stage": S, "users": {ls_user_id: {"annotator_id", "group", "projects"}}}``."""
    stage = current_stage(state, stage_order)
    users: dict[str, dict[str, Any]] = {}
    for key, project_id in sorted(state.projects.items()):
        key_stage, group = key.split("/", 1)
        if key_stage != stage:
            continue
        for annotator in state.members.get(key, []):
            if annotator in inactive or annotator not in state.users:
                continue
            entry = users.setdefault(
                str(state.users[annotator]),
                {"annotator_id": annotator, "group": group, "projects": []},
            )
            entry["projects"].append(int(project_id))
    return {"stage": stage, "users": dict(sorted(users.items(), key=lambda kv: int(kv[0])))}


def access_path(server: Server) -> Path | None:
    return server.data_dir.parent / ACCESS_FILE if server.data_dir is not None else None


def publish_access(
    server: Server, state: State, stage_order: Sequence[str], groups: pd.DataFrame | None
) -> Path | None:
    """Write the grant file of an embedded server (``None`` for an external one)."""
    path = access_path(server)
    if path is None:
        return None
    policy = access_policy(state, stage_order, inactive_annotators(groups))
    text = json.dumps(policy, indent=1) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)
    return path
