"""``emotions-data annotate server``: the root's Label Studio (start, stop, status, migrate-db)."""

from __future__ import annotations

from pathlib import Path

import click

from emotions_data.cli.common import emit_json

ROOT = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Dataset root (holds labelstudio/ and annotation/state.json).",
)
DB_PASSWORD_FILE = click.option(
    "--db-password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="File holding the password of a --db postgresql://... server "
    "(else EMOTIONS_DATA_DB_PASSWORD).",
)


@click.group()
def server() -> None:
    """The root's Label Studio: gunicorn on SQLite (default) or PostgreSQL, token in a 0600 file.

    \b
    Example:
      emotions-data annotate server start --root data
      emotions-data annotate server start --root data --db postgres --host 0.0.0.0 \\
          --certfile lab.crt --keyfile lab.key
    """


@server.command("start")
@ROOT
@click.option("--port", type=int, help="Port to listen on (default: a free one).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 or a LAN address lets a lab network in.",
)
@click.option(
    "--db",
    "db_value",
    help="Database on the root's first start: sqlite (default), postgres (a cluster of the "
    "root's own) or postgresql://USER@HOST[:PORT]/DB (an existing server).",
)
@DB_PASSWORD_FILE
@click.option("--workers", type=int, help="gunicorn worker processes (default: 2 x cores + 1).")
@click.option("--threads", type=int, default=4, show_default=True, help="Threads per worker.")
@click.option(
    "--certfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TLS certificate (PEM): serve https (with --keyfile).",
)
@click.option(
    "--keyfile",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TLS private key (PEM) of --certfile.",
)
@click.option(
    "--public-url",
    help="The https address people open when a reverse proxy ends TLS in front of the server.",
)
@click.option(
    "--wsgi",
    type=click.Choice(["gunicorn", "runserver"]),
    default="gunicorn",
    show_default=True,
    help="runserver: Label Studio's single-process development server (for comparisons).",
)
def server_start(
    root: Path,
    port: int | None,
    host: str,
    db_value: str | None,
    db_password_file: Path | None,
    workers: int | None,
    threads: int,
    certfile: Path | None,
    keyfile: Path | None,
    public_url: str | None,
    wsgi: str,
) -> None:
    """Start Label Studio for ROOT under gunicorn (seconds on SQLite; the first PostgreSQL
    start migrates its database, about 30 s).

    The first start gives ROOT its own admin password, API token and secret key. A second
    start while it runs says where it is. --db is recorded: later starts use the same database
    (`server migrate-db` moves a SQLite root to PostgreSQL).

    \b
    Example:
      emotions-data annotate server start --root data
      emotions-data annotate server start --root lab --db postgres --workers 5
      emotions-data annotate server start --root lab --host 0.0.0.0 --port 8443 \\
          --certfile lab.crt --keyfile lab.key
    """
    from emotions_data.annotation.database import parse_db
    from emotions_data.annotation.server import TOKEN_FILE, is_loopback, server_dir, start_server

    db = parse_db(db_value, db_password_file) if db_value else None
    srv = start_server(
        root,
        port=port,
        host=host,
        db=db,
        workers=workers,
        threads=threads,
        certfile=certfile,
        keyfile=keyfile,
        public_url=public_url,
        wsgi=wsgi,
    )
    where = srv.public_url or srv.url
    if srv.already_running:
        click.echo(f"Label Studio is already running for {root} at {where} (pid {srv.pid})")
        return
    click.echo(
        f"Label Studio running at {where} (pid {srv.pid}, {srv.database}); "
        f"token in {server_dir(root) / TOKEN_FILE}"
    )
    if not is_loopback(host) and certfile is None and not (public_url or "").startswith("https"):
        click.echo(
            f"Warning: listening on {host} over plain HTTP: passwords and judgements cross the "
            "network unencrypted; give --certfile/--keyfile or put a TLS reverse proxy in front "
            "(docs/guides/lab-server.md)",
            err=True,
        )


@server.command("stop")
@ROOT
def server_stop(root: Path) -> None:
    """Stop the Label Studio of ROOT (requests in flight finish) and its PostgreSQL cluster.

    \b
    Example:
      emotions-data annotate server stop --root data
    """
    from emotions_data.annotation.server import stop_server

    click.echo("stopped" if stop_server(root) else "not running")


@server.command("status")
@ROOT
@click.option("--json", "json_out", help="Write the status as JSON to this file ('-': stdout).")
def server_status_cmd(root: Path, json_out: str | None) -> None:
    """Say whether the Label Studio of ROOT answers, where, and how its processes are (exit 1
    if it does not answer).

    \b
    Example:
      emotions-data annotate server status --root data
    """
    from emotions_data.annotation.server import server_health

    health = server_health(root)
    if json_out:
        emit_json(health, json_out)
    elif health["running"]:
        click.echo(
            f"running at {health['url']} (pid {health['pid']}, {health['wsgi']}, "
            f"{health['workers']} workers; {health['database']}"
            + (f", pid {health['database_pid']}" if health.get("database_pid") else "")
            + ")"
        )
    else:
        db = health["database"]
        extra = ""
        if "database_pid" in health:
            extra = f"; its database is {'up' if health['database_pid'] else 'down'}"
        click.echo(f"not running ({db}{extra})")
    if not health["running"]:
        raise SystemExit(1)


@server.command("migrate-db")
@ROOT
@click.option(
    "--to",
    "target",
    default="postgres",
    show_default=True,
    help="postgres (a cluster of the root's own) or postgresql://USER@HOST[:PORT]/DB.",
)
@DB_PASSWORD_FILE
@click.option("--json", "json_out", help="Write the result as JSON to this file ('-': stdout).")
def migrate_db(
    root: Path, target: str, db_password_file: Path | None, json_out: str | None
) -> None:
    """Move the root's Label Studio from SQLite to PostgreSQL with nothing lost: the same
    users, projects, tasks, annotations and drafts, the same ids. The server must be stopped;
    the SQLite file is kept beside (renamed *.migrated).

    \b
    Example:
      emotions-data annotate server stop --root data
      emotions-data annotate server migrate-db --root data
      emotions-data annotate server start --root data
    """
    from emotions_data.annotation.database import parse_db
    from emotions_data.annotation.migrate_db import migrate_to_postgres

    result = migrate_to_postgres(root, parse_db(target, db_password_file))
    if json_out:
        emit_json(result.to_dict(), json_out)
    else:
        click.echo(
            f"moved {result.rows} rows in {result.tables} tables to {result.database}; "
            f"SQLite kept at {result.kept}"
        )
