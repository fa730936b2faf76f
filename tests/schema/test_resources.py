"""The bundled files: every file a reader edits in the top-level folders ships in the wheel."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from emotions_data.schema.errors import ConfigError
from emotions_data.schema.resources import BASELINES_DIR, BUNDLED_DIR, bundled_or_path

CHECKOUT = Path(__file__).resolve().parents[2]
#: top-level folder -> the files of it the package reads
BUNDLED = {
    "annotation": ("*.yaml", "*.xml", "*.csv"),
    "baselines/configs": ("*.yaml",),
    "configs": ("*.yaml",),
    "scripts": ("labelstudio-requirements.txt",),
}


def test_every_bundled_file_matches_the_wheels_package_data() -> None:
    config = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["emotions_data"]
    files = [
        path.relative_to(CHECKOUT).as_posix()
        for folder, globs in BUNDLED.items()
        for glob in globs
        for path in (CHECKOUT / folder).rglob(glob)
    ]
    assert len(files) >= 9
    # setuptools' globs do not cross "/" with "*": a file in a new sub-folder needs a pattern
    unshipped = [
        f
        for f in files
        if not any(
            fnmatch.fnmatch(f"bundled/{f}", p) and f.count("/") == p.count("/") - 1
            for p in patterns
        )
    ]
    assert unshipped == [], f"add these to [tool.setuptools.package-data]: {unshipped}"
    # and the package finds each of them through its bundled/ folder
    for f in files:
        assert (BUNDLED_DIR / f).resolve() == (CHECKOUT / f).resolve()


def test_bundled_names_and_paths(tmp_path: Path) -> None:
    assert bundled_or_path("tiny", BASELINES_DIR / "configs", "baseline config").name == "tiny.yaml"
    mine = tmp_path / "mine.yaml"
    assert bundled_or_path(mine, BASELINES_DIR / "configs", "baseline config") == mine
    with pytest.raises(
        ConfigError, match=r"unknown baseline config 'tinyy'; bundled: avcpnet, tiny"
    ):
        bundled_or_path("tinyy", BASELINES_DIR / "configs", "baseline config")
