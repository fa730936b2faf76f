"""The embedded Label Studio server: start from the migrated template, stop, status.

Everything lives under ``ROOT/labelstudio/``: ``data/`` (SQLite, media, exports), ``token``
(mode 0600, the admin API token, never printed), ``admin.json`` (mode 0600), ``server.json``
(pid, port, url) and ``server.lock``. Label Studio silently moves to port+1 when its port is taken,
so the port is chosen free by us and the answer is verified with our own token before the server
is declared up.

Every root gets its own secrets when its data folder is made from the template: the admin
password and API token, Django's ``SECRET_KEY`` (which signs sessions and JWTs) and the
organization's invite token, so knowing one root's secrets (or the template's) opens no other.
The server process inherits ``server.lock`` (an ``flock``), so the lock lives exactly as long as
the server: a second start finds it held and reports the running one instead of starting a second
server on the same SQLite.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from emotions_data.annotation.server_setup import (
    ADMIN_FILE,
    CURRENT,
    DATA_DIR,
    cache_dir,
    clean_env,
)
from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ServiceError

#: Where ``emotions-data setup`` installs the Label Studio venv and template.
LS_HOME = cache_dir() / "labelstudio" / CURRENT
SERVER_DIR = "labelstudio"
TOKEN_FILE = "token"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"
#: New secrets being given to an existing database (see ``_prepare_data``).
PENDING_SECRETS_FILE = "admin.next.json"
#: The blinding policy the hardened server enforces (see ``annotation/blinding.py``).
ACCESS_FILE = "access.json"
#: Our Django settings module and middleware, loaded into the embedded server at start-up.
PLUGIN_DIR = Path(__file__).resolve().parent / "ls_plugin"
PLUGIN_SETTINGS = "emotions_data_ls_settings"
#: Django 5.2's default PBKDF2 work factor (a lower one would be re-hashed at the first login).
PBKDF2_ITERATIONS = 1_000_000
API_KEY_ENV = "LABEL_STUDIO_API_KEY"


@dataclass(frozen=True)
class Server:
    """Where a Label Studio answers and how to authenticate (the token is never printed)."""

    url: str
    token: str
    pid: int | None = None
    data_dir: Path | None = None
    #: Folder of the Local Storage connection that serves local media (embedded server only).
    media_root: Path | None = None
    #: The address people open in a browser (``--host``); ``url`` is the local one we use.
    public_url: str | None = None
    #: ``start_server`` found this server already running instead of starting it.
    already_running: bool = False

    @property
    def identity(self) -> str:
        """What ids are bound to: the data folder of an embedded server (its port changes on
        every start), else the URL."""
        return str(self.data_dir.resolve()) if self.data_dir is not None else self.url.rstrip("/")

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return f"Server(url={self.url!r}, pid={self.pid})"


def server_dir(root: Path) -> Path:
    return Path(root) / SERVER_DIR


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_address(host: str) -> str:
    """Where we reach a server bound to ``host`` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _public_url(host: str, port: int) -> str:
    name = socket.getfqdn() if host in ("0.0.0.0", "::", "") else host
    if ":" in name:  # an IPv6 literal
        name = f"[{name}]"
    return f"http://{name}:{port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def whoami(url: str, token: str, timeout: float = 5.0) -> dict[str, object]:
    """The user the token belongs to; raises ``ServiceError`` when the server does not answer."""
    req = urllib.request.Request(
        url.rstrip("/") + "/api/current-user/whoami",
        headers={"Authorization": f"Token {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise ServiceError(f"Label Studio at {url} refused the token (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(f"Label Studio at {url} is unreachable ({reason})") from None
    if not isinstance(data, dict):
        raise ServiceError(f"Label Studio at {url} gave an unexpected whoami answer")
    return data


def _read_state(root: Path) -> dict[str, object] | None:
    path = server_dir(root) / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _write_secret(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    os.chmod(path, 0o600)


def _django_password_hash(password: str) -> str:
    """The hash Django 5.2 stores for ``password`` (``pbkdf2_sha256``), made without Django."""
    salt = secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ITERATIONS)
    encoded = base64.b64encode(digest).decode("ascii").strip()
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt}${encoded}"


def _new_secrets() -> dict[str, object]:
    return {
        "password": secrets.token_urlsafe(18),
        "token": secrets.token_hex(20),
        "invite_token": secrets.token_urlsafe(30),
        "secret_key": secrets.token_urlsafe(50),
        "per_root": True,
    }


def _personalise(data_dir: Path, new: dict[str, object]) -> dict[str, object]:
    """Give a data folder its own secrets ``new`` (server not running); idempotent.

    Admin password (hash) and legacy API token, the organization's invite token and Django's
    SECRET_KEY (``data/.env``, read by Label Studio at start-up; a new key also voids every
    session and JWT signed with the template's). Returns what ``admin.json`` holds.
    """
    db = sqlite3.connect(data_dir / "label_studio.sqlite3")
    try:
        with db:
            row = db.execute(
                "SELECT id, email FROM htx_user WHERE is_superuser = 1 ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                raise ServiceError(f"{data_dir}: the Label Studio database has no admin user")
            admin_id, email = int(row[0]), str(row[1])
            db.execute(
                "UPDATE htx_user SET password = ? WHERE id = ?",
                (_django_password_hash(str(new["password"])), admin_id),
            )
            db.execute("DELETE FROM authtoken_token WHERE user_id = ?", (admin_id,))
            db.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (?, datetime('now'), ?)",
                (str(new["token"]), admin_id),
            )
            db.execute("UPDATE organization SET token = ?", (str(new["invite_token"]),))
    except sqlite3.Error as exc:
        raise ServiceError(f"{data_dir}: cannot give the server its own secrets ({exc})") from None
    finally:
        db.close()
    _write_secret(data_dir / ".env", f"SECRET_KEY={new['secret_key']}\n")
    return {"username": email, "password": new["password"], "token": new["token"], "per_root": True}


def _prepare_data(root: Path, template: Path) -> None:
    """Copy the migrated template once and give it this root's secrets; a later start reuses it.

    A database that exists is never replaced (it may hold projects): a missing token file is
    restored from ``admin.json``, and a root made before per-root secrets existed (its token is
    still the template's) gets its own in place. The new secrets are written to
    ``admin.next.json`` before the database changes, so a crash in between is finished by the
    next start instead of leaving a database whose token no file knows.
    """
    sdir = server_dir(root)
    data = sdir / DATA_DIR
    pending = sdir / PENDING_SECRETS_FILE
    if (data / "label_studio.sqlite3").exists():
        if pending.exists():
            _install_secrets(sdir, _personalise(data, json.loads(pending.read_text())))
            pending.unlink()
            return
        if not (sdir / TOKEN_FILE).exists():
            # Never replace a database that holds projects: restore the token it was made with.
            _restore_token(sdir)
        if _shares_template_token(sdir, template):
            new = _new_secrets()
            _write_secret(pending, json.dumps(new))
            _install_secrets(sdir, _personalise(data, new))
            pending.unlink()
        return
    if not (template / DATA_DIR / "label_studio.sqlite3").exists():
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
    _install_secrets(sdir, _personalise(staging, _new_secrets()))
    if data.exists():  # a folder without a database: nothing in it to keep
        shutil.rmtree(data)
    staging.rename(data)


def _shares_template_token(sdir: Path, template: Path) -> bool:
    try:
        mine = (sdir / TOKEN_FILE).read_text().strip()
        shared = json.loads((template / ADMIN_FILE).read_text())["token"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(mine) and mine == str(shared)


def _install_secrets(sdir: Path, admin: dict[str, object]) -> None:
    _write_secret(sdir / ADMIN_FILE, json.dumps(admin))
    _write_secret(sdir / TOKEN_FILE, str(admin["token"]))


def _restore_token(sdir: Path) -> None:
    try:
        token = str(json.loads((sdir / ADMIN_FILE).read_text())["token"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ServiceError(
            f"{sdir / TOKEN_FILE} is missing and {sdir / ADMIN_FILE} holds no token; "
            "the Label Studio database is kept: put the admin token back into the token file"
        ) from None
    _write_secret(sdir / TOKEN_FILE, token)


def _read_token(root: Path) -> str:
    path = server_dir(root) / TOKEN_FILE
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ServiceError(
            f"cannot read the Label Studio token file {path} ({exc.strerror or type(exc).__name__}); "
            f"stop and start the server (`emotions-data annotate server stop --root {root}`, then start)"
        ) from None


def server_status(root: Path) -> Server | None:
    """The running embedded server of ``root``, or ``None`` when none answers."""
    state = _read_state(root)
    if not state:
        return None
    pid = int(str(state.get("pid", 0)))
    if not pid or not _pid_alive(pid):
        return None
    token = _read_token(root)
    url = str(state["url"])
    try:
        whoami(url, token, timeout=3.0)
    except ServiceError:
        return None
    return Server(
        url=url,
        token=token,
        pid=pid,
        data_dir=server_dir(root) / DATA_DIR,
        media_root=Path(str(state.get("media_root") or root)).resolve(),
        public_url=str(state.get("public_url") or url),
    )


def _try_lock(path: Path) -> int | None:
    """An open fd holding an exclusive ``flock`` on ``path``, or ``None`` when it is held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _wait_for_running(root: Path, timeout_s: float) -> Server:
    """Another process holds the root's server lock: the server it runs (or is starting)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = server_status(root)
        if running is not None:
            return replace(running, already_running=True)
        time.sleep(0.5)
    state = _read_state(root) or {}
    where = f" (pid {state.get('pid')}, {state.get('url')})" if state.get("pid") else ""
    raise ServiceError(
        f"another Label Studio holds {server_dir(root) / LOCK_FILE}{where} but does not answer; "
        f"stop it with `emotions-data annotate server stop --root {root}`"
    )


def start_server(
    root: Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    ls_home: Path = LS_HOME,
    media_root: Path | None = None,
    timeout_s: float = 120.0,
) -> Server:
    """Start (or find already running) the embedded Label Studio for ``root``.

    ``media_root`` (default ``root``) is the folder local media are served from; Label Studio
    only serves files under its ``LOCAL_FILES_DOCUMENT_ROOT`` through a Local Storage connection.
    ``host`` is the address it listens on (``0.0.0.0`` or a LAN address for a lab network; the
    caller warns that plain HTTP is not encrypted). The server is hardened at start-up by our
    settings module (``ls_plugin/``): annotators reach only the projects ``access.json`` grants.
    """
    root = Path(root).resolve()
    running = server_status(root)
    if running is not None:
        return replace(running, already_running=True)
    exe = ls_home / "venv" / "bin" / "label-studio"
    if not exe.exists():
        raise ServiceError(f"Label Studio is not installed at {exe}; run `emotions-data setup`")
    sdir = server_dir(root)
    lock_fd = _try_lock(sdir / LOCK_FILE)
    if lock_fd is None:
        return _wait_for_running(root, timeout_s)
    try:
        return _start_locked(root, lock_fd, port, host, exe, ls_home, media_root, timeout_s)
    finally:
        # The server process keeps its own copy of the locked fd for as long as it lives.
        os.close(lock_fd)


def _start_locked(
    root: Path,
    lock_fd: int,
    port: int | None,
    host: str,
    exe: Path,
    ls_home: Path,
    media_root: Path | None,
    timeout_s: float,
) -> Server:
    if port is not None and not port_is_free(port, host):
        # Label Studio would silently move to port+1; say so instead.
        raise ServiceError(f"port {port} on {host} is taken; choose another or leave --port out")
    _prepare_data(root, ls_home / "template")
    sdir = server_dir(root)
    token = _read_token(root)
    media = (media_root or root).resolve()
    port = port or free_port(host)
    home = sdir / "home"
    home.mkdir(exist_ok=True)
    env = clean_env(
        home,
        {
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": str(media),
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "DJANGO_SETTINGS_MODULE": PLUGIN_SETTINGS,
            "PYTHONPATH": str(PLUGIN_DIR),
            "EMOTIONS_DATA_ACCESS_FILE": str(sdir / ACCESS_FILE),
        },
    )
    args = [
        str(exe),
        "start",
        "--no-browser",
        "--data-dir",
        str(sdir / DATA_DIR),
        "--internal-host",
        host,
        "--port",
        str(port),
        "--log-level",
        "WARNING",
        "--enable-legacy-api-token",
    ]
    with open(sdir / LOG_FILE, "ab") as log:
        # A new session so ``stop`` can end the server and its workers by their group id only;
        # the lock fd is inherited, so the lock is held until the server is gone.
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(home),
            pass_fds=(lock_fd,),
        )
    url = f"http://{_local_address(host)}:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServiceError(
                f"Label Studio exited with code {proc.returncode} while starting; see {sdir / LOG_FILE}"
            )
        try:
            whoami(url, token, timeout=2.0)
            break
        except ServiceError:
            if time.monotonic() > deadline:
                _kill_group(proc.pid)
                raise ServiceError(
                    f"Label Studio did not answer on {url} within {timeout_s:.0f} s; see {sdir / LOG_FILE}"
                ) from None
            time.sleep(0.3)
    public = url if is_loopback(host) else _public_url(host, port)
    state = {
        "pid": proc.pid,
        "port": port,
        "host": host,
        "url": url,
        "public_url": public,
        "media_root": str(media),
        "data_dir": str(sdir / DATA_DIR),
    }
    atomic_write_text(sdir / STATE_FILE, json.dumps(state))
    return Server(
        url=url,
        token=token,
        pid=proc.pid,
        data_dir=sdir / DATA_DIR,
        media_root=media,
        public_url=public,
    )


def _kill_group(pid: int, grace_s: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def is_root_server(root: Path, pid: int) -> bool:
    """Whether ``pid`` is a Label Studio serving ``root``'s data folder (read from /proc).

    ``server.json`` may name a pid that has since been reused by an unrelated process (after a
    reboot, say): signalling it blindly could kill anything the user runs.
    """
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv if a]
    data_dir = str(server_dir(Path(root).resolve()) / DATA_DIR)
    is_ls = any(Path(a).name == "label-studio" for a in args[:2])
    serves_root = any(a == "--data-dir" and b == data_dir for a, b in itertools.pairwise(args))
    return is_ls and serves_root


def stop_server(root: Path) -> bool:
    """Stop the embedded server of ``root``; ``False`` when none was running.

    Only a process that is this root's Label Studio is signalled; a stale ``server.json`` whose
    pid now belongs to something else is removed without touching that process.
    """
    root = Path(root).resolve()
    state = _read_state(root)
    if not state:
        return False
    pid = int(str(state.get("pid", 0)))
    was_running = bool(pid) and _pid_alive(pid) and is_root_server(root, pid)
    if was_running:
        _kill_group(pid)
    with contextlib.suppress(FileNotFoundError):
        (server_dir(root) / STATE_FILE).unlink()
    return was_running


def connect(root: Path | None = None, ls_url: str | None = None) -> Server:
    """The server to talk to: ``ls_url`` + ``LABEL_STUDIO_API_KEY``, else ``root``'s embedded one."""
    if ls_url:
        token = os.environ.get(API_KEY_ENV, "").strip()
        if not token:
            raise ServiceError(f"--ls-url {ls_url} needs the {API_KEY_ENV} environment variable")
        whoami(ls_url, token)
        return Server(url=ls_url.rstrip("/"), token=token)
    if root is None:
        raise ServiceError("no Label Studio: give --root with a started server, or --ls-url")
    server = server_status(Path(root))
    if server is None:
        raise ServiceError(
            f"no Label Studio running for {root}; start it with `emotions-data annotate server start --root {root}`"
        )
    return server
