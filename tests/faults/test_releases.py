"""Issue 13, cases 1, 7 and 8 on the release side: ``release --with-media`` never publishes a
link, a failed release leaves no half-built folder, crafted or damaged releases and manifests
are one-line errors, and a flipped byte in a manifest is an error, not a garbled id."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.release.publish import RELEASE_SCHEMA
from emotions_data.schema import read_manifest
from emotions_data.testing.http import LoopbackServer
from tests.faults.conftest import cli, one_line_error, snapshot
from tests.variants.labelled_set import write_root


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled root with variants and a regular media file per video."""
    root = tmp_path_factory.mktemp("labelled") / "root"
    write_root(root, 24)
    result = CliRunner().invoke(main, ["build-variants", "--root", str(root)])
    assert result.exit_code == 0, result.output
    for row in read_manifest(root / "videos.parquet").df.itertuples():
        if isinstance(row.media_path, str):
            (root / row.media_path).parent.mkdir(parents=True, exist_ok=True)
            (root / row.media_path).write_bytes(row.video_id.encode() * 100)
    return root


def _release(root: Path, out: Path) -> list[str]:
    return ["release", "--root", str(root), "--out", str(out), "--with-media", "--bootstrap", "20"]


def test_release_with_media_never_follows_a_link_and_leaves_no_half_built_folder(
    world: Path, labelled: Path
) -> None:
    root = world / "root"
    shutil.copytree(labelled, root)
    first_id = read_manifest(root / "labels.parquet").df["video_id"].iloc[0]
    (root / "normalized").mkdir()
    (root / "normalized" / f"{first_id}.mp4").symlink_to(world / "outside" / "secret.txt")
    before = snapshot(world / "outside")

    out = world / "release"
    result = CliRunner().invoke(main, _release(root, out))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert f"normalized/{first_id}.mp4" in result.output
    assert "outside the dataset root" in result.output
    assert sorted(p.name for p in world.iterdir()) == ["outside", "root"]  # nothing half-built
    assert snapshot(world / "outside") == before

    # a good release, then a failing one into the same folder: the good one stays as it was
    (root / "normalized" / f"{first_id}.mp4").unlink()
    result = CliRunner().invoke(main, _release(root, out))
    assert result.exit_code == 0, result.output
    good = snapshot(out)
    assert any(rel.startswith("media/") for rel in good)
    # a link inside the root is refused too: only regular files are published
    (root / "normalized" / f"{first_id}.mp4").symlink_to(root / "labels.parquet")
    result = CliRunner().invoke(main, _release(root, out))
    assert result.exit_code == 1 and "is a symlink" in result.output
    assert snapshot(out) == good
    assert sorted(p.name for p in world.iterdir()) == ["outside", "release", "root"]
    assert b"secret" not in b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())


def _release_file(folder: Path, server: LoopbackServer, **changes: object) -> Path:
    """A one-row release data file (data/full/train.parquet), with ``changes`` applied."""
    row: dict[str, object] = {
        "video_id": "v1",
        "platform": "douyin",
        "source_url": server.url("c0.mp4"),
        "label": "happy",
        "split": "train",
        "fold": None,
        "sha256": "0" * 64,
        "bytes": 1,
        "duration_s": 1.5,
        "width": 64,
        "height": 96,
        "method": "majority",
        "n_votes": 3,
        "support": 1.0,
    }
    row.update(changes)
    schema = pa.schema([f for f in RELEASE_SCHEMA if f.name in row])
    table = pa.Table.from_pylist([row], schema=schema)
    path = folder / "data" / "full" / "train.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return folder


def _without(name: str, release: Path) -> Path:
    path = release / "data" / "full" / "train.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop_columns([name]), path)
    return release


def _truncated(release: Path) -> Path:
    path = release / "data" / "full" / "train.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return release


@pytest.mark.parametrize(
    ("craft", "message"),
    [
        (lambda rel: rel, "platform '../../../x'"),
        (_truncated, "not a readable Parquet file"),
        (lambda rel: _without("source_url", rel), "missing column(s) source_url"),
    ],
    ids=["platform-traversal", "truncated", "column-less"],
)
def test_crafted_or_damaged_release_is_a_one_line_error_before_any_write(
    world: Path, server: LoopbackServer, craft: object, message: str
) -> None:
    release = _release_file(world / "release", server, platform="../../../x")
    assert callable(craft)
    craft(release)
    before = snapshot(world / "outside")
    out = world / "a" / "hydrated"
    err = one_line_error(cli("hydrate", str(release), "--out", str(out)))
    assert message in err
    assert not out.exists() and not (world / "x").exists()
    assert snapshot(world / "outside") == before


def test_flipped_byte_in_a_manifest_is_an_error_not_a_garbled_id(
    tmp_path: Path, fetched: Path
) -> None:
    path = tmp_path / "videos.parquet"
    shutil.copy(fetched / "videos.parquet", path)
    first_id = pq.read_table(path).column("video_id")[0].as_py()
    data = bytearray(path.read_bytes())
    at = data.find(first_id.encode())
    assert at > 0
    data[at + 3] ^= 0x01  # one bit of one id, inside a data page
    path.write_bytes(bytes(data))
    err = one_line_error(cli("manifest", "show", str(path)))
    assert "CRC checksum verification failed" in err and str(path) in err
