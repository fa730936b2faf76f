from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from emotions_data.annotation.server import LS_HOME, Server, start_server, stop_server


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ffmpeg-marked tests only where ffmpeg is really absent (scripts/setup.sh installs it)."""
    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        return
    if os.environ.get("CI"):  # CI runs scripts/setup.sh first: a missing ffmpeg is a failure
        raise pytest.UsageError("ffmpeg/ffprobe not installed; scripts/setup.sh installs them")
    skip = pytest.mark.skip(reason="ffmpeg/ffprobe not installed (run scripts/setup.sh)")
    for item in items:
        if "ffmpeg" in item.keywords:
            item.add_marker(skip)


# One real Label Studio per session for every folder that needs one (annotation, faults):
# a server start costs 10 to 20 s here, so two folders must not start two.
@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real Label Studio per session, started from a copy of the migrated template."""
    if not (LS_HOME / "venv" / "bin" / "label-studio").exists():
        # CI runs scripts/setup.sh first, so there a missing server is a failure, not a skip
        if os.environ.get("CI"):
            pytest.fail(f"Label Studio venv missing at {LS_HOME} (scripts/setup.sh installs it)")
        pytest.skip("Label Studio venv missing (run scripts/setup.sh)")
    root = tmp_path_factory.mktemp("ls-root")
    server = start_server(root)
    try:
        yield server
    finally:
        stop_server(root)


@pytest.fixture(scope="session")
def ls_root(ls_server: Server) -> Path:
    assert ls_server.data_dir is not None
    return ls_server.data_dir.parents[1]
