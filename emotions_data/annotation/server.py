"""The embedded Label Studio server of a root: start, stop, status.

Everything lives under ``ROOT/labelstudio/``: ``data/`` (media, exports, the SQLite database when
SQLite is used), ``postgres/`` (the root's PostgreSQL cluster, ``--db postgres``),
``database.json`` (which database), ``token`` and ``admin.json`` (mode 0600, the admin's
secrets, never printed; see ``server_data.py``), ``server.json`` (pids, port, url),
``server.log`` and ``server.lock``.

Label Studio runs under gunicorn (a production WSGI server) from its own venv: a master that
forks ``--workers`` processes of ``--threads`` threads each from one loaded copy of the app
(``--preload``), restarts a worker that dies, and on SIGTERM lets the requests in flight finish
(graceful stop). Static assets are served by WhiteNoise ahead of Django
(``ls_plugin/emotions_data_ls_wsgi.py``). ``wsgi="runserver"`` starts Label Studio's own
development server instead (one process; kept to compare against, ``benchmarks/lab_load.py``).

The server is hardened at start-up by our settings module (``ls_plugin/``): annotators reach only
the projects ``access.json`` grants, in every worker (each re-reads the file when it changes).
The port is chosen free by us and the answer is verified with our own token before the server is
declared up. The server process inherits ``server.lock`` (an ``flock``), so the lock lives
exactly as long as the server: a second start finds it held and reports the running one.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from emotions_data.annotation.database import (
    Database,
    cluster,
    record_database,
    recorded_database,
)
from emotions_data.annotation.endpoint import Server, whoami
from emotions_data.annotation.server_data import (
    PLUGIN_DIR,
    PLUGIN_SETTINGS,
    TOKEN_FILE,
    prepare_postgres,
    prepare_sqlite,
    read_token,
    server_env,
)
from emotions_data.annotation.server_setup import ADMIN_FILE, CURRENT, DATA_DIR, cache_dir
from emotions_data.schema.atomic import atomic_write_text
from emotions_data.schema.errors import ConfigError, ServiceError

__all__ = [
    "ACCESS_FILE",
    "ADMIN_FILE",
    "LS_HOME",
    "PLUGIN_DIR",
    "PLUGIN_SETTINGS",
    "SERVER_DIR",
    "TOKEN_FILE",
    "Server",
    "connect",
    "default_workers",
    "free_port",
    "is_loopback",
    "is_root_server",
    "port_is_free",
    "prepare_data",
    "server_dir",
    "server_health",
    "server_status",
    "start_server",
    "stop_server",
    "whoami",
]

#: Where ``emotions-data setup`` installs the Label Studio venv and template.
LS_HOME = cache_dir() / "labelstudio" / CURRENT
SERVER_DIR = "labelstudio"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"
PID_FILE = "gunicorn.pid"
#: The blinding policy the hardened server enforces (see ``annotation/blinding.py``).
ACCESS_FILE = "access.json"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
WSGI = ("gunicorn", "runserver")
#: Threads per gunicorn worker: requests wait on the database and on the disk as often as
#: they compute, so a worker serves a few at once without adding a process.
THREADS = 4
#: A worker that holds a request this long is restarted (an export of a large project is the
#: slowest call the toolkit makes; it polls, so no single request lasts long).
WORKER_TIMEOUT_S = 300
#: Requests in flight at a stop get this long to finish.
GRACEFUL_S = 30


def server_dir(root: Path) -> Path:
    return Path(root) / SERVER_DIR


def default_workers() -> int:
    """gunicorn's advice, ``2 x cores + 1``, from the cores this process may use."""
    return 2 * len(os.sched_getaffinity(0)) + 1


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


def _public_url(host: str, port: int, scheme: str = "http") -> str:
    name = socket.getfqdn() if host in ("0.0.0.0", "::", "") else host
    if ":" in name:  # an IPv6 literal
        name = f"[{name}]"
    return f"{scheme}://{name}:{port}"


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


def _read_state(root: Path) -> dict[str, Any] | None:
    path = server_dir(root) / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _certfile(state: dict[str, Any]) -> Path | None:
    return Path(str(state["certfile"])) if state.get("certfile") else None


def server_status(root: Path) -> Server | None:
    """The running embedded server of ``root``, or ``None`` when none answers."""
    state = _read_state(root)
    if not state:
        return None
    pid = int(str(state.get("pid", 0)))
    if not pid or not _pid_alive(pid):
        return None
    sdir = server_dir(root)
    token = read_token(sdir, root)
    url = str(state["url"])
    certfile = _certfile(state)
    try:
        whoami(url, token, timeout=3.0, certfile=certfile)
    except ServiceError:
        return None
    return Server(
        url=url,
        token=token,
        pid=pid,
        data_dir=sdir / DATA_DIR,
        media_root=Path(str(state.get("media_root") or root)).resolve(),
        public_url=str(state.get("public_url") or url),
        certfile=certfile,
        database=str(state.get("database") or "sqlite"),
    )


def server_health(root: Path) -> dict[str, Any]:
    """What ``server status`` and ``doctor`` report: each process of the root, alive or not."""
    root = Path(root).resolve()
    sdir = server_dir(root)
    state = _read_state(root) or {}
    db = recorded_database(sdir)
    pid = int(str(state.get("pid", 0) or 0))
    alive = bool(pid) and _pid_alive(pid)
    master_alive = alive and is_root_server(root, pid)
    workers = _children(pid) if master_alive else []
    # asked whenever the recorded pid lives: a lost token file is an error, not "not running"
    answering = server_status(root) is not None if alive else False
    out: dict[str, Any] = {
        "running": answering,
        "url": state.get("public_url") or state.get("url"),
        "wsgi": state.get("wsgi"),
        "pid": pid if master_alive else None,
        "workers": len(workers),
        "database": db.describe(),
    }
    if db.managed:
        out["database_pid"] = cluster(sdir).running_pid()
    return out


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _wait_for_running(root: Path, lock: Path, timeout_s: float) -> tuple[Server | None, int | None]:
    """Another process holds the root's server lock: the server it runs, or the lock once the
    holder is gone (the workers of a killed master hold it for a moment after it died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = server_status(root)
        if running is not None:
            return replace(running, already_running=True), None
        fd = _try_lock(lock)
        if fd is not None:
            return None, fd
        time.sleep(0.5)
    state = _read_state(root) or {}
    where = f" (pid {state.get('pid')}, {state.get('url')})" if state.get("pid") else ""
    raise ServiceError(
        f"another Label Studio holds {lock}{where} but does not answer; "
        f"stop it with `emotions-data annotate server stop --root {root}`"
    )


def _choose_database(sdir: Path, db: Database | None) -> Database:
    """The root's recorded database; a different ``--db`` is refused (``migrate-db`` moves)."""
    recorded = recorded_database(sdir)
    has_record = (sdir / "database.json").exists()
    has_sqlite = (sdir / DATA_DIR / "label_studio.sqlite3").exists()
    if db is None:
        return recorded
    if has_record or (has_sqlite and db.is_postgres):
        if db != recorded and not (db.managed and recorded.managed):
            raise ConfigError(
                f"{sdir.parent} uses {recorded.describe()}, not {db.describe()}; "
                f"move it with `emotions-data annotate server migrate-db --root {sdir.parent}`"
            )
        return recorded
    return db


def start_server(
    root: Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    ls_home: Path = LS_HOME,
    media_root: Path | None = None,
    timeout_s: float = 180.0,
    db: Database | None = None,
    workers: int | None = None,
    threads: int = THREADS,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    public_url: str | None = None,
    wsgi: str = "gunicorn",
) -> Server:
    """Start (or find already running) the embedded Label Studio for ``root``.

    ``media_root`` (default ``root``) is the folder local media are served from; Label Studio
    only serves files under its ``LOCAL_FILES_DOCUMENT_ROOT`` through a Local Storage connection.
    ``host`` is the address it listens on (``0.0.0.0`` or a LAN address for a lab network, with
    ``certfile``/``keyfile`` for https). ``db``: the database on a root's first start (default
    SQLite); later starts use the recorded one. ``public_url``: the address people open when a
    reverse proxy stands in front (it sets the trusted origin and, for https, secure cookies).
    """
    if wsgi not in WSGI:
        raise ConfigError(f"wsgi {wsgi!r} is not allowed; allowed: {', '.join(WSGI)}")
    if (certfile is None) != (keyfile is None):
        raise ConfigError("--certfile and --keyfile go together")
    for path in (certfile, keyfile):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{path}: no such file")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers} is not allowed; allowed: 1 or more")
    root = Path(root).resolve()
    sdir = server_dir(root)
    # a cluster that died under a running server (killed, a full disk) comes back first: the
    # server's workers open a new connection per request and heal by themselves
    if recorded_database(sdir).managed and cluster(sdir).exists():
        _start_database(sdir, recorded_database(sdir))
    running = server_status(root)
    if running is not None:
        return replace(running, already_running=True)
    exe = ls_home / "venv" / "bin" / ("gunicorn" if wsgi == "gunicorn" else "label-studio")
    if not exe.exists():
        raise ServiceError(f"{exe.name} is not installed at {exe}; run `emotions-data setup`")
    lock = sdir / LOCK_FILE
    lock_fd = _try_lock(lock)
    if lock_fd is None:
        found, lock_fd = _wait_for_running(root, lock, timeout_s)
        if found is not None:
            return found
    assert lock_fd is not None
    try:
        options = _Options(
            port=port,
            host=host,
            media_root=media_root,
            timeout_s=timeout_s,
            workers=workers or default_workers(),
            threads=threads,
            certfile=Path(certfile).resolve() if certfile else None,
            keyfile=Path(keyfile).resolve() if keyfile else None,
            public_url=public_url.rstrip("/") if public_url else None,
            wsgi=wsgi,
        )
        return _start_locked(root, lock_fd, exe, ls_home, _choose_database(sdir, db), options)
    finally:
        # The server process keeps its own copy of the locked fd for as long as it lives.
        os.close(lock_fd)


@dataclass(frozen=True)
class _Options:
    """How ``start_server`` was asked to run the web server."""

    port: int | None
    host: str
    media_root: Path | None
    timeout_s: float
    workers: int
    threads: int
    certfile: Path | None
    keyfile: Path | None
    public_url: str | None
    wsgi: str


def _start_database(sdir: Path, db: Database) -> int | None:
    """Start the root's own cluster (``--db postgres``); its pid, or ``None`` for none."""
    if not db.managed:
        return None
    pg = cluster(sdir)
    if not pg.exists():
        pg.create()
    pid = pg.running_pid()
    if pid is None:
        # the same port as before when it is free: a running server's workers connect there
        try:
            port = pg.port()
        except ServiceError:
            port = 0
        try:
            # not checked with a plain bind first: the port is often in TIME_WAIT after a
            # kill, which PostgreSQL's SO_REUSEADDR listens through and a plain bind does not
            pid = pg.start(port or free_port())
        except ServiceError:
            if not port:
                raise
            pid = pg.start(free_port())  # really taken: a new port (the server restarts too)
    pg.ensure_database()
    return pid


def _web_env(public: str, opts: _Options, media: Path, sdir: Path) -> dict[str, str]:
    secure = public.startswith("https://")
    env = {
        "LOCAL_FILES_SERVING_ENABLED": "true",
        "LOCAL_FILES_DOCUMENT_ROOT": str(media),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "EMOTIONS_DATA_ACCESS_FILE": str(sdir / ACCESS_FILE),
    }
    if secure:  # cookies only over https (session: HttpOnly too, Django's default)
        env.update({"SESSION_COOKIE_SECURE": "1", "CSRF_COOKIE_SECURE": "1"})
    if opts.public_url:
        # Behind a proxy: the address in the links Label Studio writes, and the origin forms
        # come from. Without one, Label Studio's links stay relative to the address a person
        # typed: a fixed HOST (say the machine's name) sends the UI's API calls to another
        # origin than the page's, where the session cookie is not sent.
        env.update(
            {
                "HOST": public,
                "CSRF_TRUSTED_ORIGINS": public,
                "EMOTIONS_DATA_BEHIND_PROXY": "1",
            }
        )
    return env


def _command(exe: Path, sdir: Path, opts: _Options, port: int) -> list[str]:
    if opts.wsgi == "runserver":
        return [
            str(exe), "start", "--no-browser", "--data-dir", str(sdir / DATA_DIR),
            "--internal-host", opts.host, "--port", str(port), "--log-level", "WARNING",
            "--enable-legacy-api-token",
        ]  # fmt: skip
    args = [
        str(exe),
        "emotions_data_ls_wsgi:application",
        "--bind",
        f"[{opts.host}]:{port}" if ":" in opts.host else f"{opts.host}:{port}",
        "--workers",
        str(opts.workers),
        "--threads",
        str(opts.threads),
        "--worker-class",
        "gthread",
        "--preload",
        "--timeout",
        str(WORKER_TIMEOUT_S),
        "--graceful-timeout",
        str(GRACEFUL_S),
        "--keep-alive",
        "5",
        "--pid",
        str(sdir / PID_FILE),
        "--log-level",
        "warning",
        "--forwarded-allow-ips",
        "127.0.0.1,::1",
    ]
    if opts.certfile and opts.keyfile:
        args += ["--certfile", str(opts.certfile), "--keyfile", str(opts.keyfile)]
    return args


def prepare_data(root: Path, ls_home: Path = LS_HOME, template: Path | None = None) -> None:
    """Make the root's data folder ready with its own secrets, without serving it (a start
    does this first; the database must be up for PostgreSQL)."""
    sdir = server_dir(Path(root).resolve())
    db = recorded_database(sdir)
    env = server_env(sdir, db, ls_home, {})
    if db.is_postgres:
        prepare_postgres(sdir, env, ls_home)
    else:
        prepare_sqlite(sdir, template or ls_home / "template", env, ls_home)


def _start_locked(
    root: Path, lock_fd: int, exe: Path, ls_home: Path, db: Database, opts: _Options
) -> Server:
    if opts.port is not None and not port_is_free(opts.port, _bind_check_host(opts.host)):
        # Label Studio's own server would silently move to port+1; say so instead.
        raise ServiceError(
            f"port {opts.port} on {opts.host} is taken; choose another or leave --port out"
        )
    sdir = server_dir(root)
    sdir.mkdir(parents=True, exist_ok=True)
    db_pid = _start_database(sdir, db)
    record_database(sdir, db)
    port = opts.port or free_port(_bind_check_host(opts.host))
    scheme = "https" if opts.certfile else "http"
    url = f"{scheme}://{_local_address(opts.host)}:{port}"
    public = opts.public_url or (
        url if is_loopback(opts.host) else _public_url(opts.host, port, scheme)
    )
    media = (opts.media_root or root).resolve()
    env = server_env(sdir, db, ls_home, _web_env(public, opts, media, sdir))
    if db.is_postgres:
        prepare_postgres(sdir, env, ls_home)
    else:
        prepare_sqlite(sdir, ls_home / "template", env, ls_home)
    token = read_token(sdir, root)
    with open(sdir / LOG_FILE, "ab") as log:
        # A new session so ``stop`` can end the server and its workers by their group id only;
        # the lock fd is inherited, so the lock is held until the server is gone.
        proc = subprocess.Popen(
            _command(exe, sdir, opts, port),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=env["HOME"],
            pass_fds=(lock_fd,),
        )
    deadline = time.monotonic() + opts.timeout_s
    while True:
        if proc.poll() is not None:
            raise ServiceError(
                f"Label Studio exited with code {proc.returncode} while starting; see {sdir / LOG_FILE}"
            )
        try:
            whoami(url, token, timeout=2.0, certfile=opts.certfile)
            break
        except ServiceError:
            if time.monotonic() > deadline:
                _kill_group(proc.pid)
                raise ServiceError(
                    f"Label Studio did not answer on {url} within {opts.timeout_s:.0f} s; see {sdir / LOG_FILE}"
                ) from None
            time.sleep(0.3)
    state = {
        "pid": proc.pid,
        "port": port,
        "host": opts.host,
        "url": url,
        "public_url": public,
        "media_root": str(media),
        "data_dir": str(sdir / DATA_DIR),
        "wsgi": opts.wsgi,
        "workers": opts.workers if opts.wsgi == "gunicorn" else 1,
        "threads": opts.threads if opts.wsgi == "gunicorn" else None,
        "database": db.kind,
        "database_pid": db_pid,
        "certfile": str(opts.certfile) if opts.certfile else None,
    }
    atomic_write_text(sdir / STATE_FILE, json.dumps(state))
    return Server(
        url=url,
        token=token,
        pid=proc.pid,
        data_dir=sdir / DATA_DIR,
        media_root=media,
        public_url=public,
        certfile=opts.certfile,
        database=db.kind,
    )


def _bind_check_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "localhost") else host


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


def _wait_for_lock_free(lock: Path, timeout_s: float) -> None:
    """Until the server lock is free: the master has gone, but its workers hold the inherited
    lock until they have exited too, and a stop means nothing of the server is left (so that
    ``migrate-db`` or a new start right after finds the root free)."""
    deadline = time.monotonic() + timeout_s
    while True:
        fd = _try_lock(lock)
        if fd is not None:
            os.close(fd)
            return
        if time.monotonic() > deadline:
            return  # the start's own wait (``_wait_for_running``) tells who holds it
        time.sleep(0.1)


def is_root_server(root: Path, pid: int) -> bool:
    """Whether ``pid`` is a Label Studio serving ``root`` (read from /proc).

    ``server.json`` may name a pid that has since been reused by an unrelated process (after a
    reboot, say): signalling it blindly could kill anything the user runs. gunicorn is known by
    the root's pid file on its command line, Label Studio's own server by its data folder.
    """
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv if a]
    sdir = server_dir(Path(root).resolve())
    names = {Path(a).name for a in args[:2]}
    pairs = set(itertools.pairwise(args))
    if "gunicorn" in names:
        return ("--pid", str(sdir / PID_FILE)) in pairs
    return "label-studio" in names and ("--data-dir", str(sdir / DATA_DIR)) in pairs


def stop_server(root: Path, *, database: bool = True) -> bool:
    """Stop the embedded server of ``root`` (and its PostgreSQL cluster); ``False`` when no
    server was running.

    Only a process that is this root's Label Studio is signalled; a stale ``server.json`` whose
    pid now belongs to something else is removed without touching that process. SIGTERM lets
    gunicorn finish the requests in flight (``GRACEFUL_S``) before it exits.
    """
    root = Path(root).resolve()
    sdir = server_dir(root)
    state = _read_state(root)
    was_running = False
    if state:
        pid = int(str(state.get("pid", 0)))
        was_running = bool(pid) and _pid_alive(pid) and is_root_server(root, pid)
        if was_running:
            _kill_group(pid, grace_s=GRACEFUL_S + 5)
            _wait_for_lock_free(sdir / LOCK_FILE, timeout_s=GRACEFUL_S)
        with contextlib.suppress(FileNotFoundError):
            (sdir / STATE_FILE).unlink()
    if database and recorded_database(sdir).managed:
        cluster(sdir).stop()
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
