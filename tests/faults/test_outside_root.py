"""Issue 13, case 1: crafted ids, platforms, links and releases never write, delete or publish
outside the dataset root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emotions_data.testing.http import LoopbackServer
from tests.faults.conftest import cli, one_line_error, snapshot, url_list

pytestmark = [pytest.mark.ffmpeg]


def _craft_video_id(root: Path, new_id: str) -> None:
    """Rewrite row 0's video_id with pyarrow, past the manifest writer's checks."""
    path = root / "videos.parquet"
    table = pq.read_table(path)
    ids = table.column("video_id").to_pylist()
    ids[0] = new_id
    index = table.column_names.index("video_id")
    pq.write_table(table.set_column(index, "video_id", pa.array(ids)), path)


def test_traversal_video_id_deletes_and_writes_nothing_outside(world: Path, fetched: Path) -> None:
    root = world / "a" / "b" / "root"
    shutil.copytree(fetched, root)
    _craft_video_id(root, "../../../outside/victim")
    before = snapshot(world / "outside")
    err = one_line_error(cli("prepare", "--root", str(root), "--no-progress"))
    assert "'../../../outside/victim' is not a safe name" in err
    checked = cli("manifest", "validate", str(root / "videos.parquet"))
    assert checked.returncode == 1 and "is not a safe name" in checked.stderr
    assert snapshot(world / "outside") == before


def test_url_list_platform_traversal_is_refused_before_any_write(
    world: Path, server: LoopbackServer
) -> None:
    urls = url_list(world, server, ["c0.mp4", "c1.mp4"], platform=["douyin", "../../../x"])
    before = snapshot(world / "outside")
    root = world / "deep" / "er" / "root"
    err = one_line_error(cli("fetch", str(urls), "--out", str(root), "--no-progress"))
    assert "platform '../../../x'" in err and "is not a safe name" in err
    assert not root.exists()  # refused before anything was created
    assert snapshot(world / "outside") == before
    assert not (world / "x").exists() and not (world / "deep" / "x").exists()


@pytest.mark.parametrize("folder", ["cache", "normalized"])
def test_output_folder_linked_out_of_the_root_stops_prepare(
    world: Path, fetched: Path, folder: str
) -> None:
    root = world / "root"
    shutil.copytree(fetched, root)
    (root / folder).symlink_to(world / "outside" / "victim", target_is_directory=True)
    (world / "outside" / "victim" / ".x.mp4.tmp1").write_text("looks like our leftover")
    before = snapshot(world / "outside")
    err = one_line_error(cli("prepare", "--root", str(root), "--no-progress"))
    assert "outside the dataset root" in err
    assert snapshot(world / "outside") == before
    assert set(pd.read_parquet(root / "videos.parquet")["status"]) == {"ok"}  # nothing failed
