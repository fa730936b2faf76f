"""``annotate status``: per pushed stage, how far the people are (read from Label Studio)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emotions_data.annotation.progress import StageStatus, stage_status
from emotions_data.annotation.protocol import Protocol
from emotions_data.annotation.pull import read_stage
from emotions_data.annotation.server import Server
from emotions_data.annotation.state import State
from emotions_data.schema.errors import ConfigError


def annotation_status(
    root: Path,
    server: Server,
    protocol: Protocol,
    *,
    groups: pd.DataFrame | None = None,
    stages: tuple[str, ...] = (),
    via: str = "auto",
) -> list[StageStatus]:
    """One :class:`StageStatus` per stage that has an assignment (pushed or routed), in order.

    Judgements are read like ``pull`` reads them (people outside the group do not count); a
    stage routed nothing is reported as empty.
    """
    state = State.load(root)
    wanted = [protocol.stage(s) for s in stages] or [
        s for s in protocol.labelling_stages() if s.name in state.assignments
    ]
    if not wanted:
        raise ConfigError(f"nothing pushed yet under {root} (no stage has an assignment)")
    out = []
    for stage in wanted:
        assignment = state.assignments.get(stage.name)
        if assignment is None:
            raise ConfigError(f"stage {stage.name!r} has not been pushed under {root}")
        if not any(assignment.values()):
            out.append(StageStatus(stage.name, stage.judgements, empty=True))
            continue
        read = read_stage(root, server, protocol, stage.name, groups=groups, via=via)
        out.append(stage_status(state, stage, read.inside, groups))
    return out
