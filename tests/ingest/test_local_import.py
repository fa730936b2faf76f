"""``emotions-data import``: a lab's labelled files as a root that prepare and baseline train use
directly; untrusted file names and ids, labels checked against the taxonomy, re-runs resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from emotions_data.cli import main
from emotions_data.ingest.local_import import import_videos, safe_video_id
from emotions_data.schema.errors import ConfigError, ManifestError
from emotions_data.schema.io import read_manifest
from emotions_data.schema.safety import UnsafePathError, is_safe_name


def _files(folder: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"not really a video {i}".encode())


def _csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def test_import_writes_manifests_prepare_and_train_can_read(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    _files(clips, ["a.mp4", "sub/b.MOV", "weird id!.mp4", "c.webm"])
    labels = _csv(
        tmp_path / "labels.csv",
        """
file,label,split,uploader
a.mp4,fear,train,u1
sub/b.MOV,neutral,train,u1
weird id!.mp4,tension,val,u2
c.webm,excitation,test,
""",
    )
    root = tmp_path / "root"
    summary = import_videos(clips, labels, root)
    assert summary.videos == 4 and summary.linked + summary.copied == 4
    videos = read_manifest(root / "videos.parquet", "videos").df.set_index("video_id")
    assert list(videos.index) == ["a", "b", safe_video_id("weird id!"), "c"]
    weird = safe_video_id("weird id!")
    assert weird.startswith("weird_id-") and is_safe_name(weird)
    assert videos.loc["b", "media_path"] == "media/local/b.mov"
    assert (videos["status"] == "ok").all() and (videos["platform"] == "local").all()
    assert videos.loc["a", "uploader_id"] == "u1" and pd.isna(videos.loc["c", "uploader_id"])
    assert videos.loc["b", "source_url"] == "file:sub/b.MOV"
    for video_id, row in videos.iterrows():
        assert (root / row["media_path"]).read_bytes() == (
            clips
            / str(
                {"a": "a.mp4", "b": "sub/b.MOV", weird: "weird id!.mp4", "c": "c.webm"}[
                    str(video_id)
                ]
            )
        ).read_bytes()
    labels_frame = read_manifest(root / "labels.parquet", "labels").df
    assert dict(zip(labels_frame["video_id"], labels_frame["label"], strict=True))["a"] == "fear"
    split = read_manifest(root / "split.parquet", "split").df
    assert dict(zip(split["video_id"], split["split"], strict=True)) == {
        "a": "train",
        "b": "train",
        weird: "val",
        "c": "test",
    }
    # a re-run changes nothing and copies nothing
    again = import_videos(clips, labels, root)
    assert again.unchanged == 4 and again.linked == again.copied == 0


def test_ids_find_files_and_no_split_column_writes_no_split(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    _files(clips, ["douyin-123.mp4", "tiktok-9.webm"])
    labels = _csv(tmp_path / "l.csv", "id,label\ndouyin-123,sadness\ntiktok-9,relaxation")
    summary = import_videos(clips, labels, tmp_path / "root")
    assert summary.by_label == {"relaxation": 1, "sadness": 1} and summary.by_split == {}
    assert not (tmp_path / "root" / "split.parquet").exists()
    media = tmp_path / "root" / "media" / "local" / "douyin-123.mp4"
    assert media.is_file()
    if summary.linked:  # same file system: a hard link, no second copy on disk
        assert os.stat(media).st_nlink == 2


@pytest.mark.parametrize(
    ("csv_text", "error", "message"),
    [
        ("file,label\n../outside.mp4,fear", UnsafePathError, "stay inside"),
        ("file,label\n/etc/passwd,fear", UnsafePathError, "must be relative"),
        ("id,label\n../outside,fear", UnsafePathError, "must not contain a path"),
        ("file,label\nlink.mp4,fear", UnsafePathError, "outside the dataset root"),
        ("file,label\nmissing.mp4,fear", ConfigError, "no such file 'missing.mp4'"),
        ("id,label\nnone,fear", ConfigError, "expected one file none.<mp4"),
        ("file,label\nok.mp4,happy", ManifestError, "label 'happy' is not one of: excitation"),
        ("file,label,split\nok.mp4,fear,dev", ManifestError, "split 'dev' is not one of"),
        ("file,label,split\nok.mp4,fear,train\nok2.mp4,fear,", ManifestError, "no split"),
        ("file,label\nok.mp4,fear\nsub/ok.mp4,fear", ConfigError, "same video id 'ok'"),
        ("name,label\nok.mp4,fear", ConfigError, "needs a 'label' column and a 'file' or 'id'"),
    ],
)
def test_untrusted_rows_are_one_line_errors(
    tmp_path: Path, csv_text: str, error: type[Exception], message: str
) -> None:
    clips = tmp_path / "clips"
    _files(clips, ["ok.mp4", "ok2.mp4", "sub/ok.mp4"])
    (tmp_path / "outside.mp4").write_bytes(b"secret")
    (clips / "link.mp4").symlink_to(tmp_path / "outside.mp4")
    labels = _csv(tmp_path / "labels.csv", csv_text)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        import_videos(clips, labels, tmp_path / "root")
    assert not (tmp_path / "root" / "videos.parquet").exists()
    assert not list((tmp_path / "root").rglob("*.mp4"))
    result = CliRunner().invoke(
        main, ["import", str(clips), "--labels", str(labels), "--out", str(tmp_path / "root")]
    )
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert result.output.count("\n") == 1, result.output


@pytest.mark.slow
@pytest.mark.ffmpeg
def test_import_then_prepare_then_train(tmp_path: Path) -> None:
    from emotions_data.schema.taxonomy import load_taxonomy
    from emotions_data.testing.media import make_class_clip

    clips = tmp_path / "clips"
    lines = ["file,label,split"]
    for c, label in enumerate(load_taxonomy().classes):
        for k, split in enumerate(("train", "val")):
            make_class_clip(
                clips / f"{label}{k}.mp4", c, width=64, height=64, duration=1.0, variant=k
            )
            lines.append(f"{label}{k}.mp4,{label},{split}")
    labels = _csv(tmp_path / "labels.csv", "\n".join(lines))
    prepare_yaml = _csv(
        tmp_path / "prepare.yaml", "segments: 4\nframes_per_segment: 6\ncache_size: 48\nfps: 10"
    )
    root = tmp_path / "root"
    runner = CliRunner()
    result = runner.invoke(
        main, ["import", str(clips), "--labels", str(labels), "--out", str(root), "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["by_split"] == {"train": 6, "val": 6}
    result = runner.invoke(
        main,
        [
            "prepare",
            "--root",
            str(root),
            "--config",
            str(prepare_yaml),
            "--workers",
            "2",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    tiny = Path(__file__).parents[2] / "baselines" / "configs" / "tiny.yaml"
    result = runner.invoke(
        main,
        [
            "baseline",
            "train",
            "--variant",
            str(root / "split.parquet"),
            "--root",
            str(root),
            "--config",
            str(tiny),
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "run"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["val"]["n"] == 6 and summary["skipped"]["train_missing"] == []
