"""Fast read of the embedded server's tasks and annotations straight from its database.

Label Studio's export snapshot serialises every task in Python (a few ms per task on this
machine, minutes for a 28,000-task stage); the embedded server's database is the root's own,
SQLite or PostgreSQL (``database.py``), so ``pull`` reads it (read-only) instead and builds the
same JSON shape the export gives (``exports.parse_export`` treats both alike; tests check the
database and the API give the same rows). The tables are those of the pinned Label Studio
1.23.2; a schema it does not know is a ``ServiceError`` and ``pull --via api`` still works.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotions_data.annotation.database import (
    SQLITE_FILE,
    Database,
    connect,
    recorded_database,
)
from emotions_data.schema.errors import ServiceError

_TASKS = "SELECT id, {data} FROM task WHERE project_id = {p} ORDER BY id"
_ANNOTATIONS = (
    "SELECT id, task_id, completed_by_id, {result}, was_cancelled, lead_time, {created}, {updated} "
    "FROM task_completion WHERE project_id = {p} ORDER BY task_id, id"
)
# PostgreSQL hands over jsonb and timestamptz as text in the export's form, so the client
# neither builds Python objects for them nor converts time zones (a third of a 28,000-task pull)
_PG_UTC = "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_COLUMNS = {
    "sqlite": {
        "data": "data",
        "result": "result",
        "created": "created_at",
        "updated": "updated_at",
    },
    "postgres": {
        "data": "data::text",
        "result": "result::text",
        "created": _PG_UTC.format(c="created_at"),
        "updated": _PG_UTC.format(c="updated_at"),
    },
}


@dataclass(frozen=True)
class LocalDatabase:
    """The database of an embedded server (``data_dir`` is ``ROOT/labelstudio/data``)."""

    database: Database
    data_dir: Path

    @property
    def server_dir(self) -> Path:
        return self.data_dir.parent

    @property
    def placeholder(self) -> str:
        return "%s" if self.database.is_postgres else "?"

    def connect(self) -> Any:
        return connect(self.database, self.server_dir, self.data_dir)

    def describe(self) -> str:
        if self.database.is_postgres:
            return self.database.describe()
        return str(self.data_dir / SQLITE_FILE)


def local_database(data_dir: Path | None) -> LocalDatabase | None:
    """The embedded server's database, or ``None`` for an external server (no data folder)."""
    if data_dir is None:
        return None
    data_dir = Path(data_dir)
    db = recorded_database(data_dir.parent)
    if not db.is_postgres and not (data_dir / SQLITE_FILE).exists():
        return None
    return LocalDatabase(db, data_dir)


def _iso(value: Any) -> Any:
    """The export's ISO form: SQLite holds naive UTC text, PostgreSQL gives aware datetimes."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, str) and value and "T" not in value:
        return value.replace(" ", "T") + "Z"
    return value


def _json(value: Any) -> Any:
    # SQLite keeps JSON as text, PostgreSQL's jsonb arrives parsed
    return json.loads(value) if isinstance(value, str | bytes) else value


def read_project_tasks(db: LocalDatabase, project_id: int) -> list[dict[str, Any]]:
    """The project's tasks with their annotations, in the shape of a Label Studio JSON export."""
    import sqlite3

    import psycopg

    con = db.connect()
    try:
        tasks: dict[int, dict[str, Any]] = {}
        cur = con.cursor()
        columns = _COLUMNS["postgres" if db.database.is_postgres else "sqlite"]
        cur.execute(_TASKS.format(p=db.placeholder, **columns), (project_id,))
        for tid, data in cur.fetchall():
            tasks[tid] = {"id": tid, "project": project_id, "data": _json(data), "annotations": []}
        cur.execute(_ANNOTATIONS.format(p=db.placeholder, **columns), (project_id,))
        for aid, tid, user, result, cancelled, lead, created, updated in cur.fetchall():
            task = tasks.get(tid)
            if task is None:
                continue
            task["annotations"].append(
                {
                    "id": aid,
                    "completed_by": user,
                    "result": _json(result) if result else [],
                    "was_cancelled": bool(cancelled),
                    "lead_time": lead,
                    "created_at": _iso(created),
                    "updated_at": _iso(updated),
                }
            )
    except (sqlite3.Error, psycopg.Error, ValueError) as exc:
        raise ServiceError(
            f"cannot read project {project_id} from the Label Studio database {db.describe()} "
            f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}); "
            "use --via api"
        ) from None
    finally:
        con.close()
    return list(tasks.values())
