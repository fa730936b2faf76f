"""Install the Label Studio server in its own venv, and build its pre-migrated data-folder template.

``emotions-data setup`` (which ``scripts/setup.sh`` calls) runs :func:`install_label_studio`:
Label Studio pins Django and many exact versions, so it gets its own venv under
``$EMOTIONS_DATA_CACHE/labelstudio/<hash of the requirement file>/`` (default cache
``~/.cache/emotions-data``), and ``labelstudio/current`` points at it; an unchanged requirement
file costs one file check. Label Studio migrates a fresh SQLite database for about a minute; a
copy of the already migrated template starts in seconds. The template holds the admin
credentials in ``admin.json`` (mode 0600); the token is never printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ServiceError
from emotions_data.schema.resources import SCRIPTS_DIR
from emotions_data.schema.safety import root_lock

ADMIN_FILE = "admin.json"
DATA_DIR = "data"
ADMIN_USERNAME = "admin@emotions-data.local"
READY_MARK = ".ready"
CURRENT = "current"
#: What the server venv installs (bundled; the hash of its bytes names the install folder).
REQUIREMENTS = SCRIPTS_DIR / "labelstudio-requirements.txt"


def cache_dir() -> Path:
    """``$EMOTIONS_DATA_CACHE``, else ``~/.cache/emotions-data``."""
    return Path(os.environ.get("EMOTIONS_DATA_CACHE") or Path.home() / ".cache" / "emotions-data")


def requirements_hash(requirements: Path = REQUIREMENTS) -> str:
    """First 16 hex digits of the sha256 of the requirement file (as ``sha256sum`` prints)."""
    return hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]


def label_studio_home(cache: Path | None = None, requirements: Path = REQUIREMENTS) -> Path:
    """The install folder these requirements get: ``CACHE/labelstudio/<hash>``."""
    return (cache or cache_dir()) / "labelstudio" / requirements_hash(requirements)


def label_studio_executable(home: Path) -> Path:
    return home / "venv" / "bin" / "label-studio"


@dataclass(frozen=True)
class LabelStudioInstall:
    home: Path
    current: Path
    #: False when an install of the same requirements was already there.
    installed: bool


def _run(args: list[str], what: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise ServiceError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def _point_current(home: Path) -> Path:
    """Atomically make ``labelstudio/current`` a symlink to ``home`` (like ``ln -sfn``)."""
    current = home.parent / CURRENT
    staging = home.parent / f".{CURRENT}.{os.getpid()}"
    staging.unlink(missing_ok=True)
    staging.symlink_to(home)
    os.replace(staging, current)
    return current


def install_label_studio(
    *,
    cache: Path | None = None,
    python: str | Path | None = None,
    requirements: Path = REQUIREMENTS,
    progress: Callable[[str], None] = lambda _message: None,
) -> LabelStudioInstall:
    """Install the Label Studio venv and its migrated template unless they are already there.

    ``python`` makes the venv (default: this interpreter). Several minutes on a fresh machine;
    seconds when the same requirements were installed before (``.ready`` marks a finished one).
    """
    home = label_studio_home(cache, requirements)
    installed = not (home / READY_MARK).is_file()
    if installed:
        home.parent.mkdir(parents=True, exist_ok=True)
        # only an install takes the lock: a set-up that finds one done stays lock-free and quick
        with root_lock(home.parent, "emotions-data setup"):
            if not (home / READY_MARK).is_file():  # another process may have finished it
                _install(home, python, requirements, progress)
    return LabelStudioInstall(home=home, current=_point_current(home), installed=installed)


def _install(
    home: Path, python: str | Path | None, requirements: Path, progress: Callable[[str], None]
) -> None:
    progress(f"installing Label Studio at {home} (a few minutes on a fresh machine)")
    if home.exists():
        shutil.rmtree(home)  # an interrupted install: start over
    home.mkdir()
    _run([str(python or sys.executable), "-m", "venv", str(home / "venv")], "python -m venv")
    pip = [str(home / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "--upgrade", "pip"], "pip install --upgrade pip")
    _run([*pip, "-r", str(requirements)], f"pip install -r {requirements.name}")
    progress("migrating the Label Studio template (about a minute)")
    make_template(label_studio_executable(home), home / "template")
    (home / READY_MARK).touch()


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
