"""A PostgreSQL cluster of a dataset root, made and run with Debian's ``postgresql`` binaries.

``annotate server start --db postgres`` keeps the cluster under ``ROOT/labelstudio/postgres/``:
``data/`` (the cluster, mode 0700), ``password`` (mode 0600, a random password of the cluster's
only role, never printed), ``postgres.log``. It listens on a loopback port only (no unix socket:
a socket path under a deep root passes the kernel's 107-byte limit), with scram-sha-256
passwords. PostgreSQL refuses to run as root, so when the toolkit runs as root the cluster's
files belong to the ``postgres`` system user (made by Debian's package) and its programs run as
that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ServiceError

CLUSTER_DIR = "postgres"
ROLE = "emotions"
DATABASE = "labelstudio"
#: Debian installs its versions side by side; the newest is used.
DEBIAN_BIN = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"


def binaries() -> Path:
    """The folder of ``initdb``/``pg_ctl``/``postgres`` (Debian's newest, else ``PATH``)."""
    versions = sorted(
        (p for p in DEBIAN_BIN.glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    if versions:
        return versions[-1]
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ServiceError(
        "PostgreSQL is not installed (no pg_ctl); `emotions-data setup` installs Debian's "
        "postgresql, or give an existing server with --db postgresql://USER@HOST/DB"
    )


def _run_as() -> pwd.struct_passwd | None:
    """The account the cluster runs as when we are root; ``None`` means ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ServiceError(
            f"PostgreSQL cannot run as root and there is no {SYSTEM_USER!r} user; install "
            "Debian's postgresql package (`emotions-data setup`) or run as another user"
        ) from None


@dataclass(frozen=True)
class Cluster:
    """The root's cluster: where it lives and how to reach it (the password stays in a file).

    ``home`` (in the root) holds the password and port files. The cluster's own files live
    there too, except when we are root: the ``postgres`` user may not be able to reach a
    folder of root's (pytest's and ``/root``'s are 0700), so they live under that user's
    home, ``~postgres/emotions-data/<id>``, and ``home/cluster`` records where.
    """

    home: Path

    @property
    def files(self) -> Path:
        """Where the cluster's data folder and log are."""
        link = self.home / "cluster"
        if link.exists():
            return Path(link.read_text().strip())
        user = _run_as()
        if user is None:
            return self.home
        import hashlib

        ident = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:16]
        return Path(user.pw_dir) / "emotions-data" / ident

    @property
    def data(self) -> Path:
        return self.files / "data"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def log(self) -> Path:
        return self.files / "postgres.log"

    @property
    def port_file(self) -> Path:
        return self.home / "port"

    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def port(self) -> int:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            raise ServiceError(f"{self.port_file}: no port recorded for the cluster") from None

    def password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError as exc:
            raise ServiceError(
                f"cannot read the database password file {self.password_file} ({exc.strerror})"
            ) from None

    # -- running the binaries ------------------------------------------------------------
    def _tool(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _run_as()
        proc = subprocess.run(
            [str(binaries() / name), *args],
            capture_output=True,
            text=True,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
            cwd="/",
            timeout=300,
        )
        if check and proc.returncode != 0:
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            raise ServiceError(f"{name} failed for {self.data} (exit {proc.returncode}): {tail}")
        return proc

    def _give_to_cluster_user(self, path: Path) -> None:
        user = _run_as()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    # -- life cycle ----------------------------------------------------------------------
    def create(self) -> None:
        """``initdb`` with a random password for the only role; a half-made cluster is redone."""
        self.home.mkdir(parents=True, exist_ok=True)
        files = self.files
        if files != self.home:
            files.mkdir(parents=True, exist_ok=True)
            self._give_to_cluster_user(files)
            self._give_to_cluster_user(files.parent)
            atomic_write_text(self.home / "cluster", str(files))
        if self.data.exists():
            shutil.rmtree(self.data)  # no PG_VERSION: an initdb that died, nothing in it
        atomic_write_text(self.password_file, secrets.token_urlsafe(24))
        os.chmod(self.password_file, 0o600)
        # initdb reads the password from a file the cluster user can read: a private copy
        pwfile = files / ".initdb-password"
        shutil.copyfile(self.password_file, pwfile)
        os.chmod(pwfile, 0o600)
        self._give_to_cluster_user(pwfile)
        self.data.mkdir(mode=0o700)
        self._give_to_cluster_user(self.data)
        try:
            self._tool(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                ROLE,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the cluster's files (stopped first); the root's password file goes too."""
        self.stop()
        files = self.files
        if files != self.home and files.exists():
            shutil.rmtree(files)
        if self.home.exists():
            shutil.rmtree(self.home)

    def running_pid(self) -> int | None:
        """The postmaster's pid when it runs (``postmaster.pid`` names a live process)."""
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        # a killed postmaster whose parent does not reap it lingers as a zombie
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return None
        return pid

    def _recorded_pid_exists(self) -> bool:
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return False
        return Path(f"/proc/{pid}").exists()

    def start(self, port: int) -> int:
        """Start on 127.0.0.1:``port`` (crash recovery after a kill is PostgreSQL's own)."""
        if not self.exists():
            raise ServiceError(f"no PostgreSQL cluster at {self.data}")
        running = self.running_pid()
        if running is not None:
            return running
        # PostgreSQL refuses to start while a killed postmaster's pid still exists, which it
        # does as a zombie until its adopter reaps it: give that a moment
        deadline = time.monotonic() + 20
        while self._recorded_pid_exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.log.touch(exist_ok=True)
        self._give_to_cluster_user(self.log)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''"
        proc = self._tool(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "120",
            "start",
            check=False,
        )
        pid = self.running_pid()
        if proc.returncode != 0 or pid is None:
            raise ServiceError(
                f"PostgreSQL did not start for {self.data} (exit {proc.returncode}); "
                f"see {self.log}: {_last_log_line(self.log)}"
            )
        atomic_write_text(self.port_file, str(port))
        return pid

    def stop(self) -> bool:
        """Fast shutdown (open sessions end, data is safe); ``False`` when it was not running."""
        if self.running_pid() is None:
            return False
        self._tool(
            "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False
        )
        deadline = time.monotonic() + 30
        while self.running_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        return True

    def ensure_database(self, name: str = DATABASE) -> None:
        from psycopg import sql

        deadline = time.monotonic() + 30
        while True:  # after a crash the cluster replays its log before it takes connections
            try:
                self.connect("postgres").close()
                break
            except ServiceError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        with (
            contextlib.closing(self.connect("postgres")) as con,
            con.cursor() as cur,
        ):
            con.autocommit = True
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def connect(self, dbname: str = DATABASE) -> Any:
        import psycopg

        try:
            return psycopg.connect(
                host="127.0.0.1",
                port=self.port(),
                user=ROLE,
                password=self.password(),
                dbname=dbname,
                connect_timeout=10,
            )
        except psycopg.Error as exc:
            raise ServiceError(
                f"cannot connect to the PostgreSQL cluster {self.data} ({_first_line(exc)})"
            ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _last_log_line(log: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1][-300:]
    return "(empty log)"
