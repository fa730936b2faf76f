"""Which database a root's embedded Label Studio uses: SQLite (default) or PostgreSQL.

SQLite (``ROOT/labelstudio/data/label_studio.sqlite3``) suits the demo and quick rounds; a lab
round with dozens of people at once wants PostgreSQL (Label Studio's maintainers advise it beyond
a single user). ``--db postgres`` gives the root a cluster of its own (``postgres.py``);
``--db postgresql://USER@HOST[:PORT]/DB`` names an existing server, whose password comes from
``--db-password-file`` or the ``EMOTIONS_DATA_DB_PASSWORD`` environment variable and is never
printed, logged or written anywhere by us. The choice is recorded in
``ROOT/labelstudio/database.json`` (no password in it), so later starts, ``pull`` and ``doctor``
use the same database.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from emotions_data.annotation.postgres import DATABASE, ROLE, Cluster
from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ConfigError, ServiceError

DATABASE_FILE = "database.json"
PASSWORD_ENV = "EMOTIONS_DATA_DB_PASSWORD"
SQLITE_FILE = "label_studio.sqlite3"
KINDS = ("sqlite", "postgres", "postgresql://USER@HOST[:PORT]/DB")


@dataclass(frozen=True)
class Database:
    """A root's database; ``managed``: the root's own cluster under ``labelstudio/postgres``."""

    kind: str  # "sqlite" | "postgres"
    managed: bool = False
    host: str | None = None
    port: int | None = None
    user: str | None = None
    name: str | None = None
    password_file: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"

    def describe(self) -> str:
        """Where it is, for status lines (never the password)."""
        if not self.is_postgres:
            return "SQLite"
        if self.managed:
            return "PostgreSQL (this root's cluster)"
        return f"PostgreSQL at {self.user}@{self.host}:{self.port}/{self.name}"


def parse_db(value: str, password_file: Path | None = None) -> Database:
    """``--db``: ``sqlite``, ``postgres`` or ``postgresql://USER@HOST[:PORT]/DB``."""
    if value == "sqlite":
        return Database("sqlite")
    if value in ("postgres", "postgresql"):
        return Database("postgres", managed=True, user=ROLE, name=DATABASE)
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"--db {value!r} is not allowed; allowed: {', '.join(KINDS)}")
    if parts.password:
        raise ConfigError(
            "--db must not hold a password (it would show in the process list and shell "
            f"history); give it with --db-password-file or {PASSWORD_ENV}"
        )
    name = parts.path.lstrip("/")
    if not (parts.username and parts.hostname and name):
        raise ConfigError("--db needs postgresql://USER@HOST[:PORT]/DB (user, host and database)")
    return Database(
        "postgres",
        managed=False,
        host=parts.hostname,
        port=parts.port or 5432,
        user=unquote(parts.username),
        name=unquote(name),
        password_file=str(password_file.resolve()) if password_file else None,
    )


def database_file(server_dir: Path) -> Path:
    return server_dir / DATABASE_FILE


def recorded_database(server_dir: Path) -> Database:
    """What the root uses (a root with no record is on SQLite, as every root before this file)."""
    path = database_file(server_dir)
    if not path.exists():
        return Database("sqlite")
    try:
        data = json.loads(path.read_text())
        return Database(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise ServiceError(f"{path}: not a database record ({type(exc).__name__})") from None


def record_database(server_dir: Path, db: Database) -> None:
    atomic_write_text(database_file(server_dir), json.dumps(asdict(db)))


def cluster(server_dir: Path) -> Cluster:
    from emotions_data.annotation.postgres import CLUSTER_DIR

    return Cluster(server_dir / CLUSTER_DIR)


def password(db: Database, server_dir: Path) -> str:
    """The PostgreSQL password: the cluster's file, the given file, else the environment."""
    if db.managed:
        return cluster(server_dir).password()
    if db.password_file:
        try:
            return Path(db.password_file).read_text().strip()
        except OSError as exc:
            raise ServiceError(
                f"cannot read the database password file {db.password_file} ({exc.strerror})"
            ) from None
    value = os.environ.get(PASSWORD_ENV, "")
    if not value:
        raise ServiceError(
            f"the PostgreSQL server {db.host}:{db.port} needs a password: "
            f"--db-password-file or {PASSWORD_ENV}"
        )
    return value


def address(db: Database, server_dir: Path) -> tuple[str, int]:
    if db.managed:
        return "127.0.0.1", cluster(server_dir).port()
    return str(db.host), int(db.port or 5432)


def label_studio_env(db: Database, server_dir: Path) -> dict[str, str]:
    """What Label Studio's settings read to open this database."""
    if not db.is_postgres:
        return {
            "DJANGO_DB": "sqlite",
            # several WSGI workers write at once: WAL lets readers go on during a write
            # (Label Studio turns it on under this name)
            "AZURE_MOUNT_FIX": "true",
        }
    host, port = address(db, server_dir)
    return {
        "DJANGO_DB": "default",
        "POSTGRE_HOST": host,
        "POSTGRE_PORT": str(port),
        "POSTGRE_USER": str(db.user),
        "POSTGRE_NAME": str(db.name),
        "POSTGRE_PASSWORD": password(db, server_dir),
    }


def connect(db: Database, server_dir: Path, data_dir: Path) -> Any:
    """A read connection (DB-API) to the root's Label Studio database."""
    if not db.is_postgres:
        import sqlite3

        path = data_dir / SQLITE_FILE
        try:
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise ServiceError(f"cannot open the Label Studio database {path} ({exc})") from None
    import psycopg

    host, port = address(db, server_dir)
    try:
        return psycopg.connect(
            host=host,
            port=port,
            user=db.user,
            dbname=db.name,
            password=password(db, server_dir),
            connect_timeout=10,
        )
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceError(f"cannot connect to {db.describe()} ({first})") from None
