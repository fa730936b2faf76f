"""The shared trust boundary: safe names, paths inside the root, the root lock (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emotions_data.schema import ManifestError, read_manifest, write_manifest
from emotions_data.schema.safety import (
    RootLockedError,
    UnsafePathError,
    check_inside_root,
    check_safe_name,
    inside_root,
    is_safe_name,
    lock_holder,
    regular_file_inside,
    root_lock,
)
from emotions_data.testing.manifests import example_frames


@pytest.mark.parametrize(
    "name", ["douyin", "tiktok-7234", "a1b2c3d4e5f6a7b8", "cross_check_a", "A", "x.y", "_x"]
)
def test_safe_names_accepted(name: str) -> None:
    assert is_safe_name(name)
    assert check_safe_name(name, "platform") == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        ".",
        "../x",
        "a/b",
        "a\\b",
        "/etc",
        ".hidden",
        "-rf",
        "a b",
        "x\x00y",
        "é",
        "a" * 129,
    ],
)
def test_unsafe_names_refused_with_the_rule(name: str) -> None:
    assert not is_safe_name(name)
    with pytest.raises(UnsafePathError, match=r"platform .* is not a safe name: allowed are"):
        check_safe_name(name, "platform")


def test_non_strings_are_not_safe_names() -> None:
    assert not is_safe_name(None)
    assert not is_safe_name(3)


def test_inside_root_joins_and_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert inside_root(root, "media", "douyin", "x.mp4") == root.resolve() / "media/douyin/x.mp4"
    for bad in ["../victim", "/etc/passwd", "a/../../b", "a\\..\\b"]:
        with pytest.raises(UnsafePathError, match="must be relative to the dataset root"):
            inside_root(root, "media", bad)


def test_symlinks_out_of_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "normalized").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    (root / "normalized" / "a.mp4").symlink_to(outside / "secret")
    (root / "cache").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside the dataset root"):
        inside_root(root, "normalized", "a.mp4")
    with pytest.raises(UnsafePathError, match="outside the dataset root"):
        inside_root(root, "cache", "new-folder")  # a link in the middle is followed too
    with pytest.raises(UnsafePathError, match="outside the dataset root"):
        check_inside_root(root, outside / "secret")


def test_regular_file_inside_refuses_links_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "real.mp4").write_bytes(b"data")
    (root / "alias.mp4").symlink_to(root / "real.mp4")  # inside, but a link: not published
    assert regular_file_inside(root, "real.mp4") == root.resolve() / "real.mp4"
    with pytest.raises(UnsafePathError, match="is a symlink"):
        regular_file_inside(root, "alias.mp4")
    with pytest.raises(UnsafePathError, match="does not exist"):
        regular_file_inside(root, "missing.mp4")
    (root / "folder").mkdir()
    with pytest.raises(UnsafePathError, match="not a regular file"):
        regular_file_inside(root, "folder")


def test_manifest_with_traversal_ids_is_refused(tmp_path: Path) -> None:
    frame = example_frames()["videos"].copy()
    frame.loc[0, "video_id"] = "../../victim"
    with pytest.raises(ManifestError, match=r"video_id.*'../../victim' is not a safe name"):
        write_manifest(frame, tmp_path / "videos.parquet", "videos")
    frame = example_frames()["videos"].copy()
    frame.loc[0, "platform"] = "../../../x"
    with pytest.raises(ManifestError, match=r"platform.*is not a safe name"):
        write_manifest(frame, tmp_path / "videos.parquet", "videos")
    annotations = example_frames()["annotations"].copy()
    annotations.loc[0, "stage"] = "primary/../../x"
    with pytest.raises(ManifestError, match=r"stage.*is not a safe name"):
        write_manifest(annotations, tmp_path / "annotations.parquet", "annotations")


def test_crafted_manifest_file_is_refused_on_read(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = write_manifest(example_frames()["split"], tmp_path / "split.parquet", "split")
    table = pq.read_table(good)
    ids = table.column("video_id").to_pylist()
    ids[0] = "../../etc"
    crafted = table.set_column(0, "video_id", pa.array(ids))
    pq.write_table(crafted, tmp_path / "crafted.parquet")
    with pytest.raises(ManifestError, match="is not a safe name"):
        read_manifest(tmp_path / "crafted.parquet", "split")


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from emotions_data.schema.safety import root_lock
    with root_lock(sys.argv[1], "prepare --root test"):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def _start_holder(root: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    proc = _start_holder(tmp_path)
    try:
        # The holder keeps the lock until it is killed below: reaching the error at all shows
        # the second writer does not wait for it (a waiting one would hang to the timeout).
        with pytest.raises(RootLockedError) as err, root_lock(tmp_path, "fetch"):
            pass
        message = str(err.value)
        assert f"pid {proc.pid}" in message and "(prepare --root test)" in message
        assert "\n" not in message
        holder = lock_holder(tmp_path)
        assert holder is not None and holder["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_of_the_holder_frees_the_root(tmp_path: Path) -> None:
    proc = _start_holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with root_lock(tmp_path, "prepare"):
        holder = lock_holder(tmp_path)
        assert holder is not None and holder["pid"] == os.getpid()
    # released: an empty record, and another process can take it
    assert lock_holder(tmp_path) is None
    proc = _start_holder(tmp_path)
    proc.kill()
    proc.wait()


def test_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    with root_lock(tmp_path, "demo"), root_lock(tmp_path, "prepare"):
        assert lock_holder(tmp_path) is not None
        # still held after the inner block
    assert lock_holder(tmp_path) is None
