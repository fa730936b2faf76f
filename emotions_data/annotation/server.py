"""The embedded Label Studio server: start from the migrated template, stop, status.

Everything lives under ``ROOT/labelstudio/``: ``data/`` (SQLite, media, exports), ``token``
(mode 0600, the admin API token, never printed), ``admin.json`` (mode 0600) and ``server.json``
(pid, port, url). Label Studio silently moves to port+1 when its port is taken, so the port is
chosen free by us and the answer is verified with our own token before the server is declared up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
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

    @property
    def identity(self) -> str:
        """What ids are bound to: the data folder of an embedded server (its port changes on
        every start), else the URL."""
        return str(self.data_dir.resolve()) if self.data_dir is not None else self.url.rstrip("/")

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return f"Server(url={self.url!r}, pid={self.pid})"


def server_dir(root: Path) -> Path:
    return Path(root) / SERVER_DIR


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
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


def _prepare_data(root: Path, template: Path) -> None:
    """Copy the migrated template once; a later start reuses the data (projects survive)."""
    sdir = server_dir(root)
    if (sdir / DATA_DIR / "label_studio.sqlite3").exists():
        if not (sdir / TOKEN_FILE).exists():
            # Never replace a database that holds projects: restore the token it was made with.
            _restore_token(sdir)
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
    if (sdir / DATA_DIR).exists():
        shutil.rmtree(sdir / DATA_DIR)
    staging.rename(sdir / DATA_DIR)
    admin = json.loads((template / ADMIN_FILE).read_text())
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
    )


def start_server(
    root: Path,
    *,
    port: int | None = None,
    ls_home: Path = LS_HOME,
    media_root: Path | None = None,
    timeout_s: float = 120.0,
) -> Server:
    """Start (or find already running) the embedded Label Studio for ``root``.

    ``media_root`` (default ``root``) is the folder local media are served from; Label Studio
    only serves files under its ``LOCAL_FILES_DOCUMENT_ROOT`` through a Local Storage connection.
    """
    root = Path(root).resolve()
    running = server_status(root)
    if running is not None:
        return running
    exe = ls_home / "venv" / "bin" / "label-studio"
    if not exe.exists():
        raise ServiceError(f"Label Studio is not installed at {exe}; run `emotions-data setup`")
    if port is not None and not port_is_free(port):
        # Label Studio would silently move to port+1; say so instead.
        raise ServiceError(f"port {port} on 127.0.0.1 is taken; choose another or leave --port out")
    _prepare_data(root, ls_home / "template")
    sdir = server_dir(root)
    token = _read_token(root)
    media = (media_root or root).resolve()
    port = port or free_port()
    home = sdir / "home"
    home.mkdir(exist_ok=True)
    env = clean_env(
        home,
        {
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": str(media),
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        },
    )
    args = [
        str(exe),
        "start",
        "--no-browser",
        "--data-dir",
        str(sdir / DATA_DIR),
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "WARNING",
        "--enable-legacy-api-token",
    ]
    with open(sdir / LOG_FILE, "ab") as log:
        # A new session so ``stop`` can end the server and its workers by their group id only.
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(home),
        )
    url = f"http://127.0.0.1:{port}"
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
    state = {"pid": proc.pid, "port": port, "url": url, "media_root": str(media)}
    atomic_write_text(sdir / STATE_FILE, json.dumps(state))
    return Server(url=url, token=token, pid=proc.pid, data_dir=sdir / DATA_DIR, media_root=media)


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


def stop_server(root: Path) -> bool:
    """Stop the embedded server of ``root``; ``False`` when none was running."""
    state = _read_state(Path(root))
    if not state:
        return False
    pid = int(str(state.get("pid", 0)))
    was_running = bool(pid) and _pid_alive(pid)
    if was_running:
        _kill_group(pid)
    with contextlib.suppress(FileNotFoundError):
        (server_dir(Path(root)) / STATE_FILE).unlink()
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
