"""Build the pre-migrated Label Studio data-folder template (run once by ``scripts/setup.sh``).

Label Studio migrates a fresh SQLite database for about a minute; a copy of an already migrated
folder starts in seconds. The template holds the admin credentials in ``admin.json`` (mode 0600);
the token is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ServiceError

ADMIN_FILE = "admin.json"
DATA_DIR = "data"
ADMIN_USERNAME = "admin@emotions-data.local"


def clean_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: Label Studio reads bare USERNAME, PASSWORD, PORT, HOST... as fallbacks."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
    }
    env.update(extra or {})
    return env


def make_template(label_studio: Path, out: Path) -> Path:
    """Initialise a Label Studio data folder with an admin and a legacy API token, into ``out``."""
    if out.exists():
        shutil.rmtree(out)
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    password = secrets.token_urlsafe(18)
    token = secrets.token_hex(20)
    home = staging / "home"
    home.mkdir()
    args = [
        str(label_studio),
        "init",
        "--no-browser",
        "--data-dir",
        str(staging / DATA_DIR),
        "--username",
        ADMIN_USERNAME,
        "--password",
        password,
        "--user-token",
        token,
        "--enable-legacy-api-token",
    ]
    proc = subprocess.run(args, env=clean_env(home), capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (staging / DATA_DIR / "label_studio.sqlite3").exists():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise ServiceError(f"label-studio init failed (exit {proc.returncode}): {' | '.join(tail)}")
    admin = staging / ADMIN_FILE
    atomic_write_text(
        admin, json.dumps({"username": ADMIN_USERNAME, "password": password, "token": token})
    )
    os.chmod(admin, 0o600)
    staging.rename(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-template", help="initialise the migrated template folder")
    mk.add_argument(
        "--label-studio", type=Path, required=True, help="path of the label-studio script"
    )
    mk.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    make_template(args.label_studio, args.out)
    print(f"template ready at {args.out}")


if __name__ == "__main__":
    main()
