"""A root's Label Studio data: its database made ready and given the root's own secrets.

Every root gets its own admin password and API token, Django's ``SECRET_KEY`` (which signs
sessions and JWTs; ``data/.env``, read by Label Studio at start-up) and the organization's invite
token, so knowing one root's secrets (or the template's) opens no other.

* SQLite: the migrated template (``emotions-data setup``) is copied once, then given new secrets
  through Label Studio's own models (``ls_plugin/emotions_data_ls_admin.py``).
* PostgreSQL: the database is migrated and its admin made by ``label-studio init`` with the
  root's secrets from the start (about 30 s, once per root).

``token`` and ``admin.json`` (both mode 0600) hold the admin's secrets; the token is never
printed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from emotions_data.annotation.database import SQLITE_FILE, Database, label_studio_env
from emotions_data.annotation.server_setup import ADMIN_FILE, ADMIN_USERNAME, DATA_DIR, clean_env
from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ServiceError

TOKEN_FILE = "token"
#: New secrets being given to an existing database (see ``prepare_sqlite``).
PENDING_SECRETS_FILE = "admin.next.json"
#: Our Django settings module and middleware, loaded into the embedded server at start-up.
PLUGIN_DIR = Path(__file__).resolve().parent / "ls_plugin"
PLUGIN_SETTINGS = "emotions_data_ls_settings"


def write_secret(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    os.chmod(path, 0o600)


def new_secrets() -> dict[str, object]:
    return {
        "password": secrets.token_urlsafe(18),
        "token": secrets.token_hex(20),
        "invite_token": secrets.token_urlsafe(30),
        "secret_key": secrets.token_urlsafe(50),
        "per_root": True,
    }


def label_studio_package(ls_home: Path) -> Path:
    """The ``label_studio`` folder inside the venv (its modules import as top-level ``core``...)."""
    found = sorted((ls_home / "venv" / "lib").glob("python3*/site-packages/label_studio"))
    if not found:
        raise ServiceError(f"Label Studio is not installed at {ls_home}; run `emotions-data setup`")
    # resolved as Label Studio's own start-up resolves it: the same folder under two names
    # (through the `current` link and not) is two homes of one app to Django
    return found[-1].resolve()


def server_env(sdir: Path, db: Database, ls_home: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of every Label Studio process of the root (server and admin runs)."""
    home = sdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return clean_env(
        home,
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(sdir / DATA_DIR),
            "DJANGO_SETTINGS_MODULE": PLUGIN_SETTINGS,
            "PYTHONPATH": f"{PLUGIN_DIR}:{label_studio_package(ls_home)}",
            "LOG_LEVEL": "WARNING",
            "LATEST_VERSION_CHECK": "false",  # asks pypi.org at start-up otherwise
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            **label_studio_env(db, sdir),
            **extra,
        },
    )


def run_admin(ls_home: Path, env: dict[str, str], *args: str) -> str:
    """Run ``emotions_data_ls_admin ARGS`` in Label Studio's venv; its last output line."""
    python = ls_home / "venv" / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "emotions_data_ls_admin", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=env["HOME"],
        timeout=600,
    )
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-2:])
        raise ServiceError(f"Label Studio administration ({args[0]}) failed: {tail}")
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _personalise(
    sdir: Path, data_dir: Path, env: dict[str, str], ls_home: Path, new: dict[str, object]
) -> None:
    """Give a data folder its own secrets ``new`` (server not running); idempotent."""
    write_secret(data_dir / ".env", f"SECRET_KEY={new['secret_key']}\n")
    secrets_file = sdir / ".personalise.json"
    write_secret(secrets_file, json.dumps(new))
    try:
        answer = run_admin(
            ls_home,
            {**env, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir)},
            "personalise",
            str(secrets_file),
        )
    finally:
        secrets_file.unlink(missing_ok=True)
    try:
        username = str(json.loads(answer)["username"])
    except (ValueError, KeyError, TypeError):
        username = ADMIN_USERNAME
    install_secrets(
        sdir,
        {
            "username": username,
            "password": new["password"],
            "token": new["token"],
            "per_root": True,
        },
    )


def prepare_sqlite(sdir: Path, template: Path, env: dict[str, str], ls_home: Path) -> None:
    """Copy the migrated template once and give it this root's secrets; a later start reuses it.

    A database that exists is never replaced (it may hold projects): a missing token file is
    restored from ``admin.json``, and a root made before per-root secrets existed (its token is
    still the template's) gets its own in place. The new secrets are written to
    ``admin.next.json`` before the database changes, so a crash in between is finished by the
    next start instead of leaving a database whose token no file knows.
    """
    data = sdir / DATA_DIR
    pending = sdir / PENDING_SECRETS_FILE
    if (data / SQLITE_FILE).exists():
        if pending.exists():
            _personalise(sdir, data, env, ls_home, json.loads(pending.read_text()))
            pending.unlink()
            return
        if not (sdir / TOKEN_FILE).exists():
            # Never replace a database that holds projects: restore the token it was made with.
            restore_token(sdir)
        if _shares_template_token(sdir, template):
            new = new_secrets()
            write_secret(pending, json.dumps(new))
            _personalise(sdir, data, env, ls_home, new)
            pending.unlink()
        return
    if not (template / DATA_DIR / SQLITE_FILE).exists():
        raise ServiceError(
            f"no Label Studio template at {template}; run `emotions-data setup` to make it"
        )
    sdir.mkdir(parents=True, exist_ok=True)
    staging = sdir / (DATA_DIR + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(template / DATA_DIR, staging)
    # Secrets on disk before the database gets its final name: a crash before the rename
    # copies the template again, one after it finds both.
    _personalise(sdir, staging, env, ls_home, new_secrets())
    if data.exists():  # a folder without a database: nothing in it to keep
        shutil.rmtree(data)
    staging.rename(data)


def prepare_postgres(sdir: Path, env: dict[str, str], ls_home: Path) -> None:
    """Migrate a new PostgreSQL database and make its admin with the root's own secrets.

    ``admin.json`` is written last: a start that died before it runs ``init`` again, which
    migrates nothing twice and finds the admin it made.
    """
    data = sdir / DATA_DIR
    if (sdir / ADMIN_FILE).exists():
        if not (sdir / TOKEN_FILE).exists():
            restore_token(sdir)
        run_admin(ls_home, env, "migrate")  # a newer Label Studio than the one that made it
        return
    pending = sdir / PENDING_SECRETS_FILE
    if pending.exists():
        new = json.loads(pending.read_text())
    else:
        new = new_secrets()
        write_secret(pending, json.dumps(new))
    data.mkdir(parents=True, exist_ok=True)
    write_secret(data / ".env", f"SECRET_KEY={new['secret_key']}\n")
    exe = ls_home / "venv" / "bin" / "label-studio"
    init_env = {
        **env,
        # read by `label-studio init` as fallbacks of --username/--password/--user-token: the
        # password never shows in the process list
        "USERNAME": ADMIN_USERNAME,
        "PASSWORD": str(new["password"]),
        "USER_TOKEN": str(new["token"]),
        # `label-studio` puts its package folder on the path itself
        "PYTHONPATH": str(PLUGIN_DIR),
    }
    proc = subprocess.run(
        [str(exe), "init", "--no-browser", "--data-dir", str(data), "--enable-legacy-api-token"],
        env=init_env,
        capture_output=True,
        text=True,
        check=False,
        cwd=env["HOME"],
        timeout=900,
    )
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-2:])
        raise ServiceError(
            f"label-studio init on PostgreSQL failed (exit {proc.returncode}): {tail}"
        )
    install_secrets(
        sdir,
        {
            "username": ADMIN_USERNAME,
            "password": new["password"],
            "token": new["token"],
            "per_root": True,
        },
    )
    pending.unlink()


def _shares_template_token(sdir: Path, template: Path) -> bool:
    try:
        mine = (sdir / TOKEN_FILE).read_text().strip()
        shared = json.loads((template / ADMIN_FILE).read_text())["token"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(mine) and mine == str(shared)


def install_secrets(sdir: Path, admin: dict[str, object]) -> None:
    write_secret(sdir / ADMIN_FILE, json.dumps(admin))
    write_secret(sdir / TOKEN_FILE, str(admin["token"]))


def restore_token(sdir: Path) -> None:
    try:
        token = str(json.loads((sdir / ADMIN_FILE).read_text())["token"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ServiceError(
            f"{sdir / TOKEN_FILE} is missing and {sdir / ADMIN_FILE} holds no token; "
            "the Label Studio database is kept: put the admin token back into the token file"
        ) from None
    write_secret(sdir / TOKEN_FILE, token)


def read_token(sdir: Path, root: Path) -> str:
    path = sdir / TOKEN_FILE
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ServiceError(
            f"cannot read the Label Studio token file {path} ({exc.strerror or type(exc).__name__}); "
            f"stop and start the server (`emotions-data annotate server stop --root {root}`, then start)"
        ) from None
