"""Fast read of the embedded server's tasks and annotations straight from its SQLite file.

Label Studio's export snapshot serialises every task in Python (a few ms per task on this
machine, minutes for a 28,000-task stage); the embedded server's database is ours, on this
machine, so ``pull`` reads it read-only instead and builds the same JSON shape the export gives
(``exports.parse_export`` treats both alike; a test checks both paths give the same rows). The
tables are those of the pinned Label Studio 1.23.2; a schema it does not know is a
``ServiceError`` and ``pull --via api`` still works.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from emotions_data.schema.errors import ServiceError

DB_FILE = "label_studio.sqlite3"

_TASKS = "SELECT id, data FROM task WHERE project_id = ? ORDER BY id"
_ANNOTATIONS = (
    "SELECT id, task_id, completed_by_id, result, was_cancelled, lead_time, created_at, updated_at "
    "FROM task_completion WHERE project_id = ? ORDER BY task_id, id"
)


def database_path(data_dir: Path | None) -> Path | None:
    if data_dir is None:
        return None
    path = Path(data_dir) / DB_FILE
    return path if path.exists() else None


def _iso(value: Any) -> Any:
    # SQLite holds naive UTC times ("2024-05-01 10:00:00.123456"); the export writes ISO + Z.
    if isinstance(value, str) and value and "T" not in value:
        return value.replace(" ", "T") + "Z"
    return value


def read_project_tasks(db: Path, project_id: int) -> list[dict[str, Any]]:
    """The project's tasks with their annotations, in the shape of a Label Studio JSON export."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise ServiceError(f"cannot open the Label Studio database {db} ({exc})") from None
    try:
        tasks: dict[int, dict[str, Any]] = {}
        for tid, data in con.execute(_TASKS, (project_id,)):
            tasks[tid] = {
                "id": tid,
                "project": project_id,
                "data": json.loads(data),
                "annotations": [],
            }
        for aid, tid, user, result, cancelled, lead, created, updated in con.execute(
            _ANNOTATIONS, (project_id,)
        ):
            task = tasks.get(tid)
            if task is None:
                continue
            task["annotations"].append(
                {
                    "id": aid,
                    "completed_by": user,
                    "result": json.loads(result) if result else [],
                    "was_cancelled": bool(cancelled),
                    "lead_time": lead,
                    "created_at": _iso(created),
                    "updated_at": _iso(updated),
                }
            )
    except (sqlite3.Error, ValueError) as exc:
        raise ServiceError(
            f"cannot read project {project_id} from the Label Studio database {db} ({exc}); "
            "use --via api"
        ) from None
    finally:
        con.close()
    return list(tasks.values())
