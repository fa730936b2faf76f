"""Where the project's bundled files live (label configs, protocols, taxonomies, configs).

The files are edited in the top-level folders of the repository (``annotation/``,
``baselines/configs/``, ``configs/``, ``scripts/``); ``emotions_data/bundled/`` holds symlinks to
them, so a checkout reads them in place and ``pip wheel .`` copies their content into the wheel
as package data (``[tool.setuptools.package-data]``). One copy in git, found the same way from a
checkout, an editable install or an installed wheel.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from emotions_data.schema.errors import ConfigError


def _bundled_dir() -> Path:
    root = files("emotions_data").joinpath("bundled")
    # Installed wheels and checkouts are plain folders; a zipped install would need as_file().
    if not isinstance(root, Path):
        raise ConfigError(f"the bundled files of emotions_data are not on the file system: {root}")
    return root


BUNDLED_DIR = _bundled_dir()
ANNOTATION_DIR = BUNDLED_DIR / "annotation"
BASELINES_DIR = BUNDLED_DIR / "baselines"
SCRIPTS_DIR = BUNDLED_DIR / "scripts"


def bundled_or_path(value: str | Path, folder: Path, what: str) -> Path:
    """``value`` as a path when it names an existing file or has a suffix, else the bundled
    ``folder/<value>.yaml`` (``tiny`` -> ``baselines/configs/tiny.yaml``)."""
    path = Path(value)
    if path.suffix or path.exists() or path.parent != Path():
        return path
    bundled = folder / f"{value}.yaml"
    if bundled.is_file():
        return bundled
    known = sorted(p.stem for p in folder.glob("*.yaml"))
    raise ConfigError(f"unknown {what} {str(value)!r}; bundled: {', '.join(known)}")
