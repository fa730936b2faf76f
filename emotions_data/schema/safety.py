"""The trust boundary (docs/design.md "Trust boundary"): safe names, paths inside the root, one writer per root.

Everything read from a URL list, a manifest, a release or a Label Studio export is untrusted.
Three rules keep such data from reaching outside a dataset root or another run's work:

* identifiers that become path components (``video_id``, ``platform``, stage and group names)
  must be *safe names* (:func:`check_safe_name`): letters, digits, ``_``, ``-``, ``.``, not
  starting with a dot, so ``..``, ``/``, ``\\``, NUL and hidden names cannot be formed;
* every path built from data is made with :func:`inside_root` (or checked with
  :func:`check_inside_root`) before a write, rename, delete or publish: it is resolved,
  symlinks included, and must lie inside the resolved root; :func:`regular_file_inside`
  additionally refuses a symlink or anything but a regular file (what ``release`` copies);
* one writer per root: :class:`RootLock` (an advisory ``flock`` on ``ROOT/.emotions-data.lock``)
  is held by every command that writes into the root; a second writer fails at once with a
  one-line error naming the holder's pid and command. The kernel drops the lock when its holder
  dies, even by ``kill -9``, so a crashed run never blocks the next one.

Only the standard library is imported here: the CLI's ``--help`` path stays light.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from emotions_data.schema.errors import EmotionsDataError

#: A safe path component: 1-128 characters of ``[A-Za-z0-9_.-]``, not starting with ``.`` or ``-``
#: (a leading dash reads as an option to the tools we call; a leading dot is ``..`` or hidden).
SAFE_NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_SAFE_NAME = re.compile(SAFE_NAME_PATTERN)
SAFE_NAME_RULE = (
    "1-128 characters of letters, digits, '_', '-' and '.', starting with a letter, digit or '_'"
)

LOCK_NAME = ".emotions-data.lock"


class UnsafePathError(EmotionsDataError):
    """A name or path taken from data would leave the dataset root, or is not a safe name."""


class RootLockedError(EmotionsDataError):
    """Another process holds the dataset root's write lock."""


def is_safe_name(value: object) -> bool:
    return isinstance(value, str) and _SAFE_NAME.fullmatch(value) is not None


def check_safe_name(value: object, what: str) -> str:
    """Return ``value`` if it is a safe path component, else raise a one-line error naming it."""
    if not is_safe_name(value):
        raise UnsafePathError(f"{what} {value!r} is not a safe name: allowed are {SAFE_NAME_RULE}")
    assert isinstance(value, str)
    return value


def _resolved_root(root: str | Path) -> Path:
    return Path(root).resolve()


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_inside_root(root: str | Path, path: str | Path, what: str = "path") -> Path:
    """Resolve ``path`` (symlinks followed as far as they exist) and check it lies inside ``root``.

    Returns the path as given (absolute, under the root), not its resolution, so a caller that
    replaces a symlink replaces the link itself. Raises :class:`UnsafePathError` otherwise.
    """
    base = _resolved_root(root)
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = base / candidate
    resolved = candidate.resolve()
    if not _within(resolved, base):
        raise UnsafePathError(
            f"{what} {str(path)!r} resolves to {str(resolved)!r}, outside the dataset root {str(base)!r}"
        )
    return candidate


def inside_root(root: str | Path, *parts: str | Path, what: str = "path") -> Path:
    """Join ``parts`` under ``root`` and check the result stays inside it (see :func:`check_inside_root`).

    ``parts`` may be relative paths with ``/``; absolute parts and ``..`` are refused before
    anything is resolved, so a crafted value never even names a path outside.
    """
    base = _resolved_root(root)
    rel = Path()
    for part in parts:
        piece = Path(part)
        text = str(part)
        if piece.is_absolute() or "\\" in text or "\x00" in text or ".." in piece.parts:
            raise UnsafePathError(
                f"{what} {text!r} must be relative to the dataset root and stay inside it"
            )
        rel = rel / piece
    return check_inside_root(base, base / rel, what=what)


def regular_file_inside(root: str | Path, path: str | Path, what: str = "file") -> Path:
    """Like :func:`check_inside_root`, and the path itself is a regular file, not a symlink."""
    checked = check_inside_root(root, path, what=what)
    try:
        info = os.lstat(checked)
    except FileNotFoundError:
        raise UnsafePathError(f"{what} {str(path)!r} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise UnsafePathError(f"{what} {str(path)!r} is {kind}; only regular files are used")
    return checked


# --------------------------------------------------------------------------- the root lock

_held: dict[Path, tuple[int, int]] = {}  # resolved root -> (fd, depth), for re-entry in-process
_held_guard = threading.Lock()


def _command_line() -> str:
    argv = [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]]
    return " ".join(argv)[:200]


def lock_holder(root: str | Path) -> dict[str, object] | None:
    """What the lock file says of its last holder (pid, command, since), or ``None``."""
    try:
        text = (Path(root) / LOCK_NAME).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class RootLock:
    """An advisory write lock on a dataset root, held for a ``with`` block.

    Re-entrant within one process (``demo`` runs fetch, prepare, ... under one lock). A second
    process gets :class:`RootLockedError` at once: ``ROOT is in use by pid P (COMMAND) since T``.
    The lock file is never deleted (deleting it would let two holders lock two different inodes).
    """

    def __init__(self, root: str | Path, command: str | None = None) -> None:
        self.root = Path(root)
        self.command = command

    def __enter__(self) -> RootLock:
        self.root.mkdir(parents=True, exist_ok=True)
        key = self.root.resolve()
        with _held_guard:
            if key in _held:
                fd, depth = _held[key]
                _held[key] = (fd, depth + 1)
                return self
            path = key / LOCK_NAME
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = lock_holder(key) or {}
                pid = holder.get("pid", "?")
                command = holder.get("command", "unknown command")
                since = holder.get("since", "?")
                raise RootLockedError(
                    f"{key} is in use by pid {pid} ({command}) since {since}; "
                    "wait for it to finish or stop it, then run again"
                ) from None
            record = {
                "pid": os.getpid(),
                "command": self.command or _command_line(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            # the holder record is only informative: a full disk must not leave the lock taken
            # with its descriptor lost (the command then fails later with a one-line ENOSPC)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
            _held[key] = (fd, 1)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        key = self.root.resolve()
        with _held_guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
                return
            del _held[key]
            try:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def root_lock(root: str | Path, command: str | None = None) -> RootLock:
    """``with root_lock(root, "prepare"):`` holds the root's write lock (see :class:`RootLock`)."""
    return RootLock(root, command)


def release_inherited_locks() -> None:
    """Close lock descriptors inherited by a forked worker, so only the driver holds the lock.

    Call it in a pool worker's initializer: a worker that outlived a killed driver must not keep
    the root locked (the re-run would report the dead driver as the holder).
    """
    with _held_guard:
        for fd, _depth in _held.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        _held.clear()
