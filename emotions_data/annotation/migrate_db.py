"""``annotate server migrate-db``: move a root's Label Studio from SQLite to PostgreSQL.

Both databases are made by the migrations of the same Label Studio, so they have the same tables
and columns; the rows of every table are copied as they are (the same ids: the root's state,
manifests and grants name projects, tasks and users by id), in one PostgreSQL transaction, after
which every identity sequence continues past the largest id and each table's row count is
checked against SQLite. Django makes PostgreSQL foreign keys ``DEFERRABLE INITIALLY DEFERRED``,
so the order of tables does not matter inside the transaction. A run that dies before the commit
leaves PostgreSQL as it was and SQLite in use; a re-run starts over. After the commit the root
records PostgreSQL and the SQLite file is kept beside, renamed ``*.migrated``.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotions_data.annotation.database import (
    SQLITE_FILE,
    Database,
    cluster,
    connect,
    record_database,
    recorded_database,
)
from emotions_data.annotation.server import LOCK_FILE, LS_HOME, server_dir, server_status
from emotions_data.annotation.server_data import run_admin, server_env
from emotions_data.annotation.server_setup import DATA_DIR
from emotions_data.schema.errors import ConfigError, ServiceError

#: Kept by PostgreSQL's own migrations: the same migrations, recorded as PostgreSQL ran them.
SKIPPED = {"django_migrations", "sqlite_sequence"}


@dataclass(frozen=True)
class MigrationResult:
    tables: int
    rows: int
    database: str
    kept: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": self.tables,
            "rows": self.rows,
            "database": self.database,
            "kept": str(self.kept),
        }


def migrate_to_postgres(root: Path, target: Database, ls_home: Path = LS_HOME) -> MigrationResult:
    """Copy every row of the root's SQLite database into ``target`` and switch the root to it."""
    if not target.is_postgres:
        raise ConfigError("--to must be postgres or postgresql://USER@HOST[:PORT]/DB")
    root = Path(root).resolve()
    sdir = server_dir(root)
    sqlite_path = sdir / DATA_DIR / SQLITE_FILE
    if recorded_database(sdir).is_postgres:
        raise ConfigError(f"{root} already uses {recorded_database(sdir).describe()}")
    if not sqlite_path.exists():
        raise ConfigError(f"{root} has no Label Studio database to move ({sqlite_path})")
    if server_status(root) is not None:
        raise ConfigError(
            f"the Label Studio of {root} is running; stop it first "
            f"(`emotions-data annotate server stop --root {root}`)"
        )
    # the server lock: no start of this root while rows move
    fd = os.open(sdir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"a Label Studio of {root} holds {sdir / LOCK_FILE}; stop it first"
            ) from None
        return _migrate_locked(sdir, sqlite_path, target, ls_home)
    finally:
        os.close(fd)


def _migrate_locked(
    sdir: Path, sqlite_path: Path, target: Database, ls_home: Path
) -> MigrationResult:
    if target.managed:
        from emotions_data.annotation.server import free_port

        pg = cluster(sdir)
        if not pg.exists():
            pg.create()
        if pg.running_pid() is None:
            pg.start(free_port())
        pg.ensure_database()
    # PostgreSQL gets its tables from Label Studio's migrations, then SQLite's rows
    run_admin(ls_home, server_env(sdir, target, ls_home, {}), "migrate")
    import psycopg

    source = sqlite3.connect(sqlite_path, timeout=30)
    try:
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every row in the main file
        tables, rows = _copy_all(source, connect(target, sdir, sdir / DATA_DIR))
    except (psycopg.Error, sqlite3.Error) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceError(
            f"moving {sqlite_path} to {target.describe()} failed ({first}); nothing was moved"
        ) from None
    finally:
        source.close()
    record_database(sdir, target)
    kept = sqlite_path.with_name(SQLITE_FILE + ".migrated")
    os.replace(sqlite_path, kept)
    for suffix in ("-wal", "-shm"):
        Path(str(sqlite_path) + suffix).unlink(missing_ok=True)
    if target.managed:
        cluster(sdir).stop()  # `server start` starts it again with the server
    return MigrationResult(tables=tables, rows=rows, database=target.describe(), kept=kept)


def _sqlite_tables(source: sqlite3.Connection) -> list[str]:
    names = source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    ).fetchall()
    return [str(n) for (n,) in names if n not in SKIPPED]


def _copy_all(source: sqlite3.Connection, target: Any) -> tuple[int, int]:
    from psycopg import sql

    tables = _sqlite_tables(source)
    total = 0
    with target:  # one transaction: all rows or none
        cur = target.cursor()
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        pg_columns = _pg_columns(cur)
        missing = [t for t in tables if t not in pg_columns]
        if missing:
            raise ServiceError(
                f"PostgreSQL has no table {missing[0]!r} that SQLite has; are both made by the "
                "same Label Studio? nothing was moved"
            )
        cur.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            )
        )
        for table in tables:
            columns = [str(r[1]) for r in source.execute(f'PRAGMA table_info("{table}")')]
            # PostgreSQL computes its generated columns (full-text search vectors) itself
            columns = [c for c in columns if pg_columns[table].get(c) != "generated"]
            absent = [c for c in columns if c not in pg_columns[table]]
            if absent:
                raise ServiceError(
                    f"PostgreSQL's table {table!r} has no column {absent[0]!r}; nothing was moved"
                )
            booleans = {i for i, c in enumerate(columns) if pg_columns[table][c] == "boolean"}
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            )
            select = "SELECT " + ", ".join(f'"{c}"' for c in columns) + f' FROM "{table}"'
            with cur.copy(copy_sql) as copy:
                for row in source.execute(select):
                    if booleans:
                        row = tuple(
                            bool(v) if i in booleans and v is not None else v
                            for i, v in enumerate(row)
                        )
                    copy.write_row(row)
            _continue_sequences(cur, table, pg_columns[table])
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            moved = int(cur.fetchone()[0])
            expected = int(source.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
            if moved != expected:
                raise ServiceError(
                    f"table {table!r}: {moved} rows in PostgreSQL, {expected} in SQLite; "
                    "nothing was moved"
                )
            total += moved
    target.close()
    return len(tables), total


def _pg_columns(cur: Any) -> dict[str, dict[str, str]]:
    cur.execute(
        "SELECT table_name, column_name, data_type, is_generated FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    out: dict[str, dict[str, str]] = {}
    for table, column, kind, generated in cur.fetchall():
        out.setdefault(str(table), {})[str(column)] = (
            "generated" if generated == "ALWAYS" else str(kind)
        )
    return out


def _continue_sequences(cur: Any, table: str, columns: dict[str, str]) -> None:
    """Identity/serial columns go on after the largest copied id (new rows get new ids)."""
    from psycopg import sql

    for column in columns:
        cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (f'"{table}"', column))
        found = cur.fetchone()
        if not found or found[0] is None:
            continue
        cur.execute(
            sql.SQL("SELECT setval(%s, COALESCE((SELECT max({}) FROM {}), 0) + 1, false)").format(
                sql.Identifier(column), sql.Identifier(table)
            ),
            (found[0],),
        )
