"""What this machine has and lacks for emotions-data (``emotions-data doctor``), and the fixes.

Each check names the piece, says what was found, whether the commands need it, and the command
that fixes it when it is missing. Nothing here installs anything (``emotions-data setup`` does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emotions_data.annotation.server_setup import (
    ADMIN_FILE,
    CURRENT,
    READY_MARK,
    cache_dir,
    label_studio_executable,
    label_studio_home,
)

#: Below this much free space under the dataset root, doctor reports the disk as missing.
MIN_FREE_GIB = 1.0
GIB = 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    #: A missing piece that is needed makes ``doctor`` exit 1; the others are information.
    needed: bool = True
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sudo() -> str:
    return "" if os.geteuid() == 0 else "sudo "


def ffmpeg_fix() -> str:
    """The command that installs ffmpeg/ffprobe with this system's package manager."""
    if shutil.which("apt-get"):
        return f"{_sudo()}apt-get install -y ffmpeg"
    if shutil.which("brew"):
        return "brew install ffmpeg"
    if shutil.which("dnf"):
        return f"{_sudo()}dnf install -y ffmpeg"
    if shutil.which("conda"):
        return "conda install -c conda-forge ffmpeg"
    return "install ffmpeg and ffprobe from https://ffmpeg.org/download.html and put them on PATH"


def _tool(name: str) -> Check:
    path = shutil.which(name)
    if path is None:
        return Check(name, False, "not found on PATH", fix=ffmpeg_fix())
    try:
        proc = subprocess.run(
            [path, "-version"], capture_output=True, text=True, timeout=20, check=False
        )
        first = (proc.stdout.splitlines() or ["?"])[0].split(" Copyright")[0]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(name, False, f"{path} does not run: {exc}", fix=ffmpeg_fix())
    if proc.returncode != 0:
        return Check(name, False, f"{path} -version exited {proc.returncode}", fix=ffmpeg_fix())
    return Check(name, True, f"{path}: {first}")


def label_studio_check(cache: Path | None = None) -> Check:
    """The server venv and template this package's requirements want, under ``labelstudio/``."""
    home = label_studio_home(cache)
    fix = "emotions-data setup"
    if not (home / READY_MARK).is_file():
        current = (cache or cache_dir()) / "labelstudio" / CURRENT
        other = f"; {current} is another version" if current.exists() else ""
        return Check("label-studio", False, f"not installed at {home}{other}", fix=fix)
    exe = label_studio_executable(home)
    if not exe.exists() or not (home / "template" / ADMIN_FILE).is_file():
        return Check("label-studio", False, f"{home} is incomplete", fix=fix)
    current = home.parent / CURRENT
    if not current.exists() or current.resolve() != home.resolve():
        return Check("label-studio", False, f"{current} does not point at {home}", fix=fix)
    return Check("label-studio", True, f"{current} -> {home}")


def torch_check() -> Check:
    """torch's version and whether CUDA is usable (CPU only is fine: information, not a fault)."""
    try:
        import torch
    except ImportError as exc:  # a broken install of the package's own dependency
        return Check("torch", False, f"cannot import: {exc}", fix="pip install 'emotions-data'")
    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return Check(
            "torch",
            True,
            f"{torch.__version__}, CUDA {torch.version.cuda}: "
            f"{torch.cuda.device_count()} x {', '.join(names)}",
        )
    if torch.version.cuda is None:
        fix = "for a GPU, install a CUDA build of torch: https://pytorch.org/get-started/locally/"
    else:
        fix = f"this torch is built for CUDA {torch.version.cuda}: check the driver (nvidia-smi)"
    return Check(
        "torch",
        False,
        f"{torch.__version__}, no CUDA device: training runs on the CPU (--device cpu)",
        needed=False,
        fix=fix,
    )


def disk_check(root: Path, min_free_gib: float = MIN_FREE_GIB) -> Check:
    """Free space on the file system that holds ``root`` (its nearest existing parent)."""
    probe = Path(root).resolve()
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free / GIB
    detail = f"{free:.1f} GiB free under {probe}"
    if free < min_free_gib:
        return Check(
            "disk",
            False,
            f"{detail} (below {min_free_gib:g} GiB)",
            fix=f"free space under {probe}, or choose another --root",
        )
    return Check("disk", True, detail)


def ffmpeg_checks() -> list[Check]:
    return [_tool("ffmpeg"), _tool("ffprobe")]


def postgres_check() -> Check:
    """Debian's PostgreSQL binaries, for ``annotate server start --db postgres`` (optional)."""
    from emotions_data.annotation.postgres import binaries
    from emotions_data.schema.errors import ServiceError

    try:
        found = binaries()
    except ServiceError:
        return Check(
            "postgresql",
            False,
            "no pg_ctl: `--db postgres` is unavailable (SQLite and external servers work)",
            needed=False,
            fix=f"{_sudo()}apt-get install -y postgresql",
        )
    return Check("postgresql", True, str(found))


def server_check(root: Path) -> Check | None:
    """The root's Label Studio and database processes, when the root has a server folder."""
    from emotions_data.annotation.server import server_dir, server_health
    from emotions_data.schema.errors import EmotionsDataError

    if not server_dir(root).exists():
        return None
    try:
        health = server_health(root)
    except EmotionsDataError as exc:
        return Check("server", False, str(exc), needed=False)
    if health["running"]:
        detail = (
            f"running at {health['url']} ({health['wsgi']}, {health['workers']} workers; "
            f"{health['database']})"
        )
        return Check("server", True, detail, needed=False)
    db = ""
    if "database_pid" in health:
        db = f"; database {'up' if health['database_pid'] else 'down'}"
    return Check(
        "server",
        False,
        f"not running ({health['database']}{db})",
        needed=False,
        fix=f"emotions-data annotate server start --root {root}",
    )


def run_checks(
    root: Path = Path("."), *, cache: Path | None = None, min_free_gib: float = MIN_FREE_GIB
) -> list[Check]:
    """Every check, in the order ``doctor`` prints them."""
    server = server_check(root)
    return [
        *ffmpeg_checks(),
        label_studio_check(cache),
        postgres_check(),
        torch_check(),
        disk_check(root, min_free_gib),
        *([server] if server is not None else []),
    ]
